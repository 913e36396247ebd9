"""Exception hierarchy shared by every Katazuke package.

Each library raises a subclass of :class:`KatazukeError` whose message says what the
caller must change; the CLI prints that message (no traceback) and exits non-zero.
"""


class KatazukeError(Exception):
    """Base class of every error Katazuke raises on purpose."""


class ConfigError(KatazukeError, ValueError):
    """A configuration file or value is missing, unknown or out of range."""


class InputError(KatazukeError, ValueError):
    """Input data (a file, an array, a message) is malformed."""


def require_library_name(module_name: str, folder: str) -> None:
    """Refuse a library folder imported under its folder name instead of ``katazuke.<folder>``.

    The libraries live at the repository root (``control/``, ...) but are installed as
    ``katazuke.control`` etc. so that ours never shadows python-control's ``control``. A
    library's ``__init__`` calls this with its ``__name__``.

    Raises:
        ImportError: when ``module_name`` is not ``katazuke.<folder>`` (the repository root is
            on ``sys.path``).
    """
    if module_name != f"katazuke.{folder}":
        raise ImportError(
            f"the repository folder '{folder}/' was imported as top-level '{module_name}' because "
            "the repository root is on sys.path (e.g. 'python' started in the repo root). It is "
            f"the package katazuke.{folder}: import it by that name and start Python with -P "
            "(or PYTHONSAFEPATH=1) so the root does not shadow installed packages.")


__all__ = ["KatazukeError", "ConfigError", "InputError", "require_library_name"]
