"""Our runner for ROS 2 launch files (``katazuke launch``); ROS-free. See docs/launch.md.

``ros2 launch`` needs the ``launch``/``launch_ros`` packages, which the PyPI ROS 2
wheels lack. This package reads the same XML and YAML files with the same semantics
(:mod:`katazuke.launcher.xml`, :mod:`katazuke.launcher.substitutions`), Python launch
files of the common subset (:mod:`katazuke.launcher.pylaunch`), resolves them
into a :class:`LaunchGraph` of processes (:mod:`katazuke.launcher.graph`) and runs
them under a :class:`Supervisor` (:mod:`katazuke.launcher.supervisor`). Running needs
Linux (each process is started through a guard, :mod:`katazuke.launcher._guard`, that
leaves nothing of its tree alive even when the launcher is SIGKILLed); reading and
``--print`` work anywhere.

Example:
    >>> graph = load_launch("launch/demo_talker_listener.launch.xml", {"namespace": "a"})
    >>> Supervisor(graph).run()  # doctest: +SKIP
"""
from katazuke.launcher.graph import ComponentSpec, LaunchGraph, ParamDict, ParamFile, ProcessSpec
from katazuke.launcher.substitutions import SubstitutionError, parse_template, safe_eval
from katazuke.launcher.supervisor import ProcessEvent, Supervisor, process_group_members
from katazuke.launcher.xml import (load_launch, parse_launch_arguments, read_launch_file,
                                   resolve_launch_file)

__all__ = [
    "LaunchGraph", "ProcessSpec", "ComponentSpec", "ParamDict", "ParamFile", "load_launch",
    "read_launch_file", "resolve_launch_file",
    "parse_launch_arguments", "Supervisor", "ProcessEvent", "process_group_members",
    "SubstitutionError", "parse_template", "safe_eval",
]
