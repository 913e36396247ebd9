"""katazuke.planning: a ROS-free library (no rclpy, no message packages).

Imported as ``katazuke.planning``.
"""
if __name__ != "katazuke.planning":  # pragma: no cover - only on a mis-configured sys.path
    raise ImportError(
        f"the repository folder 'planning/' was imported as top-level '{__name__}' because the "
        "repository root is on sys.path (e.g. 'python' started in the repo root). It is "
        "the package katazuke.planning: import it by that name and start Python with -P "
        "(or PYTHONSAFEPATH=1) so the root does not shadow installed packages.")

__all__: list[str] = []
