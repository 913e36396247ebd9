"""``katazuke launch``: run a ROS 2 launch file without the ROS ``launch`` package.

XML, YAML and (for the common subset) Python launch files; ``--print`` writes the
resolved graph in the format docs/launch.md documents.

Usage (like ``ros2 launch``)::

    katazuke launch launch/demo_talker_listener.launch.xml namespace:=robot1
    katazuke launch katazuke_ros demo_talker_listener.launch.xml --print
    katazuke launch FILE --domain-id 42 --shutdown-timeout 3

Each node runs as its own process (own process group); its output lines are
prefixed with ``[name]``. Ctrl-C / SIGTERM stop everything: SIGINT, then SIGTERM
after ``--shutdown-timeout`` seconds, then SIGKILL. Every line (including
``output="log"`` stdout) is also written to ``launch.log`` in the log directory
(``--log-dir``, default ``$ROS_LOG_DIR`` or ``$ROS_HOME/log`` or ``~/.ros/log``,
in a ``katazuke_launch_<UTC time>_<pid>`` folder).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from katazuke.errors import KatazukeError


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--print", dest="print_only", action="store_true",
                        help="print the resolved graph (processes, executables, namespaces, names, "
                             "params, remaps, env changes, command lines) as YAML and exit")
    parser.add_argument("--show-args", action="store_true",
                        help="print the launch arguments (value and description) and exit")
    parser.add_argument("--domain-id", type=int, default=None, metavar="N",
                        help="ROS_DOMAIN_ID for every process (default: inherit)")
    parser.add_argument("--shutdown-timeout", type=float, default=5.0, metavar="S",
                        help="seconds to wait after SIGINT (and after SIGTERM) before escalating "
                             "(default: 5)")
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="where the launch.log folder is created (default: ROS log dir)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_options(parser)
    # REMAINDER keeps options given after FILE (`launch FILE --print a:=1`); main()
    # re-parses them so options and name:=value arguments may be mixed freely.
    parser.add_argument("target", nargs=argparse.REMAINDER, metavar="FILE | PKG FILE",
                        help="launch file path, or package and file name (searched in "
                             "share/PKG/launch), followed by name:=value arguments")


def _reparse(args: argparse.Namespace) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="katazuke launch")
    _add_options(parser)
    parser.add_argument("words", nargs="*")
    ns = parser.parse_intermixed_args(args.target, namespace=argparse.Namespace(**vars(args)))
    ns.target = ns.words
    return ns


def _split_target(words: list[str]) -> tuple[list[str], list[str]]:
    target = [w for w in words if ":=" not in w]
    args = [w for w in words if ":=" in w]
    if not 1 <= len(target) <= 2:
        raise KatazukeError(f"expected FILE or PKG FILE before the name:=value arguments, got {target}")
    return target, args


def _log_root(explicit: Path | None) -> Path:
    from katazuke.launcher.xml import ros_log_dir

    return explicit if explicit is not None else ros_log_dir(os.environ)


def main(args: argparse.Namespace) -> int:
    import yaml

    from katazuke.launcher import Supervisor, load_launch, parse_launch_arguments, resolve_launch_file

    args = _reparse(args)
    target, words = _split_target(args.target)
    if args.domain_id is not None and not 0 <= args.domain_id <= 232:
        raise KatazukeError(f"--domain-id must be 0..232, got {args.domain_id}")
    if args.shutdown_timeout <= 0:
        raise KatazukeError(f"--shutdown-timeout must be > 0, got {args.shutdown_timeout}")
    path = resolve_launch_file(target)
    child_env = {} if args.domain_id is None else {"ROS_DOMAIN_ID": str(args.domain_id)}
    launch_args = parse_launch_arguments(words)
    stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime())
    log_file = _log_root(args.log_dir) / f"katazuke_launch_{stamp}_{os.getpid()}" / "launch.log"
    graph = load_launch(path, launch_args, child_env=child_env, log_dir=log_file.parent)
    undeclared = sorted(set(launch_args) - set(graph.arguments))
    if undeclared:
        print(f"[launch] warning: {path.name} declares no argument(s) {', '.join(undeclared)} "
              f"(declared: {', '.join(graph.arguments) or 'none'})", file=sys.stderr)
    if args.show_args:
        for name, (value, desc) in graph.arguments.items():
            print(f"'{name}':\n    {desc or '(no description)'}\n    (current: '{value}')")
        return 0
    if args.print_only:
        try:
            yaml.safe_dump(graph.describe(), sys.stdout, sort_keys=False, width=120)
            sys.stdout.flush()
        except BrokenPipeError:  # `katazuke launch --print FILE | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    supervisor = Supervisor(graph, shutdown_timeout=args.shutdown_timeout, log_file=log_file)
    print(f"[launch] {path} ({len(supervisor.graph.processes)} processes); log: {log_file}", file=sys.stderr)
    return supervisor.run()
