"""Python launch files (``*.launch.py``) for the common subset, without ROS's ``launch``.

A Python launch file defines ``generate_launch_description()`` returning a
``LaunchDescription``. This module runs the file with a small stand-in for the part of
the ``launch`` / ``launch_ros`` API that most files use, and turns what it returns into
the same :class:`~katazuke.launcher.xml.Element` tree an XML file gives, so it resolves
with the XML semantics:

- ``launch``: ``LaunchDescription``; ``launch.actions``: ``DeclareLaunchArgument``,
  ``IncludeLaunchDescription``, ``GroupAction``, ``SetEnvironmentVariable``,
  ``AppendEnvironmentVariable``, ``UnsetEnvironmentVariable``, ``SetLaunchConfiguration``,
  ``ExecuteProcess``, ``TimerAction``, ``Shutdown``, ``LogInfo``;
  ``launch.substitutions``: ``LaunchConfiguration``, ``TextSubstitution``,
  ``EnvironmentVariable``, ``ThisLaunchFileDir``, ``PathJoinSubstitution``,
  ``PythonExpression``, ``Command``, ``FindExecutable``; ``launch.conditions``:
  ``IfCondition``, ``UnlessCondition``; ``launch.launch_description_sources``:
  ``PythonLaunchDescriptionSource``, ``AnyLaunchDescriptionSource``,
  ``XMLLaunchDescriptionSource``, ``FrontendLaunchDescriptionSource``.
- ``launch_ros.actions``: ``Node``, ``PushRosNamespace``, ``SetParameter``, ``SetRemap``,
  ``ComposableNodeContainer``, ``LoadComposableNodes``; ``launch_ros.descriptions``:
  ``ComposableNode``, ``ParameterValue``, ``ParameterFile``; ``launch_ros.substitutions``:
  ``FindPackageShare``, ``FindPackagePrefix``; ``ament_index_python.packages``:
  ``get_package_share_directory``.

The stand-ins are visible only to the launch file: its ``import`` statements are
answered from here while it runs (nothing is put into ``sys.modules``, an installed
``launch`` package is never shadowed for other code). Any other name of those modules
is refused with an error saying the file needs ROS's ``launch`` package (``ros2 launch``).
"""
from __future__ import annotations

import builtins
import os
import shlex
import sys
import types
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from katazuke.errors import KatazukeError
from katazuke.launcher.substitutions import Sub, SubstitutionError, Template, find_package_prefix

__all__ = ["read_launch_py"]

_FAKE_ROOTS = ("launch", "launch_ros", "ament_index_python")


class _Unsupported(ImportError):
    """A name of the launch API this interpreter does not provide."""

    line: int | None = None  # the launch file's line, when no traceback frame has it


class _Action:
    """Base of the stand-in actions: remembers where in the launch file it was made."""

    def __init__(self) -> None:
        self.where = _caller_line()

    def _take_condition(self, kwargs: dict) -> None:
        """``condition=`` from the action's keyword arguments; any other one is unsupported."""
        self.condition = kwargs.pop("condition", None)
        _no_kwargs(type(self).__name__, kwargs)


def _caller_line() -> int:
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename == _State.file:
            return frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return 1


class _State:
    file = ""  # the launch file being run (for line numbers)
    env: Mapping[str, str] = os.environ  # the launch environment (package lookups)


# ----------------------------------------------------------------------------- substitutions

class _Subst:
    def template(self) -> Template:
        raise NotImplementedError


class LaunchConfiguration(_Subst):
    def __init__(self, variable_name: Any, default: Any = None) -> None:
        self.name, self.default = variable_name, default

    def template(self) -> Template:
        args: tuple[Template, ...] = (_template(self.name),)
        if self.default is not None:
            args += (_template(self.default),)
        return (Sub("var", args),)


class EnvironmentVariable(_Subst):
    def __init__(self, name: Any, default_value: Any = None) -> None:
        self.name, self.default = name, default_value

    def template(self) -> Template:
        args: tuple[Template, ...] = (_template(self.name),)
        if self.default is not None:
            args += (_template(self.default),)
        return (Sub("env", args),)


class TextSubstitution(_Subst):
    def __init__(self, text: str = "") -> None:
        self.text = text

    def template(self) -> Template:
        return (self.text,) if self.text else ()


class ThisLaunchFileDir(_Subst):
    def template(self) -> Template:
        return (Sub("dirname"),)


class FindPackageShare(_Subst):
    def __init__(self, package: Any) -> None:
        self.package = package

    def template(self) -> Template:
        return (Sub("find-pkg-share", (_template(self.package),)),)


class PathJoinSubstitution(_Subst):
    def __init__(self, substitutions: Iterable[Any]) -> None:
        self.parts = list(substitutions)

    def template(self) -> Template:
        out: list[Any] = []
        for i, part in enumerate(self.parts):
            if i:
                out.append(os.sep)
            out.extend(_template(part))
        return tuple(out)


class PythonExpression(_Subst):
    def __init__(self, expression: Any, python_modules: Any = None) -> None:
        self.expression, self.modules = expression, python_modules

    def template(self) -> Template:
        args: tuple[Template, ...] = (_template(self.expression),)
        if self.modules:
            mods = self.modules if isinstance(self.modules, (list, tuple)) else [self.modules]
            args += (_template(" ".join(str(m) for m in mods)),)
        return (Sub("eval", args),)


class Command(_Subst):
    def __init__(self, command: Any, on_stderr: str = "fail") -> None:
        self.command, self.on_stderr = command, on_stderr

    def template(self) -> Template:
        return (Sub("command", (_template(self.command), (self.on_stderr,))),)


class FindExecutable(_Subst):
    def __init__(self, name: Any) -> None:
        self.name = name

    def template(self) -> Template:
        return (Sub("find-exec", (_template(self.name),)),)


class FindPackagePrefix(_Subst):
    def __init__(self, package: Any) -> None:
        self.package = package

    def template(self) -> Template:
        return (Sub("find-pkg-prefix", (_template(self.package),)),)


def _template(value: Any) -> Template:
    """A Python value (text, substitution or a list of them, concatenated) as a template."""
    if value is None:
        return ()
    if isinstance(value, _Subst):
        return value.template()
    if isinstance(value, (list, tuple)):
        out: list[Any] = []
        for v in value:
            out.extend(_template(v))
        return tuple(out)
    if isinstance(value, bool):
        return ("true" if value else "false",)
    if isinstance(value, (str, int, float, os.PathLike)):
        return (str(value),) if str(value) else ()
    raise _Unsupported(f"a value of type {type(value).__name__} ({value!r})")


class _Condition:
    def __init__(self, predicate_expression: Any) -> None:
        self.expr = predicate_expression


class IfCondition(_Condition):
    attr = "if"


class UnlessCondition(_Condition):
    attr = "unless"


# ----------------------------------------------------------------------------- actions

class LaunchDescription:
    def __init__(self, initial_entities: Iterable[Any] | None = None) -> None:
        self.entities = list(initial_entities or [])

    def add_action(self, action: Any) -> None:
        self.entities.append(action)

    add_entity = add_action


class _Source:
    def __init__(self, launch_file_path: Any) -> None:
        self.path = launch_file_path


PythonLaunchDescriptionSource = AnyLaunchDescriptionSource = _Source
XMLLaunchDescriptionSource = FrontendLaunchDescriptionSource = YAMLLaunchDescriptionSource = _Source


class DeclareLaunchArgument(_Action):
    def __init__(self, name: str, default_value: Any = None, description: str = "",
                 choices: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__()
        self.name, self.default, self.description, self.choices = name, default_value, description, choices
        self._take_condition(kwargs)


class SetEnvironmentVariable(_Action):
    def __init__(self, name: Any, value: Any, **kwargs: Any) -> None:
        super().__init__()
        self.name, self.value = name, value
        self._take_condition(kwargs)


class LogInfo(_Action):
    def __init__(self, msg: Any, **kwargs: Any) -> None:
        super().__init__()
        self.msg = msg
        self._take_condition(kwargs)


class IncludeLaunchDescription(_Action):
    def __init__(self, launch_description_source: Any, launch_arguments: Any = None, **kwargs: Any) -> None:
        super().__init__()
        if not isinstance(launch_description_source, _Source):
            launch_description_source = _Source(launch_description_source)
        self.source = launch_description_source
        items = launch_arguments.items() if isinstance(launch_arguments, dict) else (launch_arguments or [])
        self.arguments = list(items)
        self._take_condition(kwargs)


class GroupAction(_Action):
    def __init__(self, actions: Iterable[Any], scoped: bool = True, forwarding: bool = True,
                 launch_configurations: dict | None = None, **kwargs: Any) -> None:
        super().__init__()
        self.actions, self.scoped, self.forwarding = list(actions), scoped, forwarding
        self.keep = dict(launch_configurations or {})
        self._take_condition(kwargs)


class PushRosNamespace(_Action):
    def __init__(self, namespace: Any, **kwargs: Any) -> None:
        super().__init__()
        self.namespace = namespace
        self._take_condition(kwargs)


class SetParameter(_Action):
    def __init__(self, name: Any, value: Any, **kwargs: Any) -> None:
        super().__init__()
        self.name, self.value = name, value
        self._take_condition(kwargs)


class SetRemap(_Action):
    def __init__(self, src: Any, dst: Any, **kwargs: Any) -> None:
        super().__init__()
        self.src, self.dst = src, dst
        self._take_condition(kwargs)


class SetLaunchConfiguration(_Action):
    def __init__(self, name: Any, value: Any, **kwargs: Any) -> None:
        super().__init__()
        self.name, self.value = name, value
        self._take_condition(kwargs)


class AppendEnvironmentVariable(_Action):
    def __init__(self, name: Any, value: Any, prepend: Any = False, separator: Any = os.pathsep,
                 **kwargs: Any) -> None:
        super().__init__()
        self.name, self.value, self.prepend, self.separator = name, value, prepend, separator
        self._take_condition(kwargs)


class UnsetEnvironmentVariable(_Action):
    def __init__(self, name: Any, **kwargs: Any) -> None:
        super().__init__()
        self.name = name
        self._take_condition(kwargs)


class TimerAction(_Action):
    def __init__(self, period: Any, actions: Iterable[Any], **kwargs: Any) -> None:
        super().__init__()
        self.period, self.actions = period, list(actions)
        self._take_condition(kwargs)


class Shutdown(_Action):
    def __init__(self, reason: Any = "shutdown action", **kwargs: Any) -> None:
        super().__init__()
        self.reason = reason
        self._take_condition(kwargs)


_PROCESS_KWARGS = {"name": "name", "cwd": "cwd", "output": "output", "respawn": "respawn",
                   "respawn_delay": "respawn_delay", "respawn_max_retries": "respawn_max_retries",
                   "prefix": "launch-prefix", "shell": "shell", "emulate_tty": "emulate_tty",
                   "sigterm_timeout": "sigterm_timeout", "sigkill_timeout": "sigkill_timeout"}


class ExecuteProcess(_Action):
    def __init__(self, cmd: Iterable[Any], **kwargs: Any) -> None:
        super().__init__()
        self.cmd, self.kwargs = list(cmd), kwargs


class ParameterValue:
    """``launch_ros.parameter_descriptions.ParameterValue``: a value with an optional type."""

    def __init__(self, value: Any, value_type: Any = None) -> None:
        self.value, self.value_type = value, value_type


class ParameterFile:
    def __init__(self, param_file: Any, allow_substs: Any = False) -> None:
        self.path, self.allow_substs = param_file, allow_substs


class ComposableNode:
    def __init__(self, package: Any, plugin: Any, name: Any, namespace: Any = None,
                 parameters: Any = None, remappings: Any = None, extra_arguments: Any = None,
                 **kwargs: Any) -> None:
        self.where = _caller_line()
        self.package, self.plugin, self.name, self.namespace = package, plugin, name, namespace
        self.parameters, self.remappings, self.extra = parameters, remappings, extra_arguments
        self.condition = kwargs.pop("condition", None)
        _no_kwargs("ComposableNode", kwargs)


class ComposableNodeContainer(_Action):
    def __init__(self, *, name: Any, namespace: Any, composable_node_descriptions: Any = None,
                 **kwargs: Any) -> None:
        super().__init__()
        self.nodes = list(composable_node_descriptions or [])
        self.kwargs = dict(kwargs, name=name, namespace=namespace)


class LoadComposableNodes(_Action):
    def __init__(self, *, composable_node_descriptions: Any, target_container: Any, **kwargs: Any) -> None:
        super().__init__()
        self.nodes, self.target = list(composable_node_descriptions), target_container
        self._take_condition(kwargs)


_NODE_KWARGS = {"package": "pkg", "executable": "exec", "name": "name", "namespace": "namespace",
                "exec_name": "exec_name", "output": "output", "respawn": "respawn",
                "respawn_delay": "respawn_delay", "prefix": "launch-prefix", "cwd": "cwd",
                "emulate_tty": "emulate_tty", "sigterm_timeout": "sigterm_timeout",
                "sigkill_timeout": "sigkill_timeout"}


class Node(_Action):
    def __init__(self, executable: Any = None, **kwargs: Any) -> None:
        super().__init__()
        if executable is None and "node_executable" not in kwargs:
            raise TypeError("Node() needs executable=")
        kwargs["executable"] = executable if executable is not None else kwargs.pop("node_executable")
        self.kwargs = kwargs


def _no_kwargs(what: str, kwargs: dict) -> None:
    if kwargs:
        raise _Unsupported(f"{what}({', '.join(kwargs)}=...)")


def get_package_share_directory(package_name: str) -> str:
    try:
        return str(find_package_prefix(package_name, _State.env) / "share" / package_name)
    except SubstitutionError as exc:
        raise LookupError(str(exc)) from None


# ----------------------------------------------------------------------------- modules

def _module(name: str, **attrs: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)

    def missing(attr: str) -> Any:
        if attr.startswith("__"):  # probes such as __all__ (from m import *) or __path__
            raise AttributeError(attr)
        raise _Unsupported(f"{name}.{attr}")

    mod.__getattr__ = missing  # type: ignore[method-assign]
    return mod


def _modules() -> dict[str, types.ModuleType]:
    actions = _module("launch.actions", DeclareLaunchArgument=DeclareLaunchArgument,
                      IncludeLaunchDescription=IncludeLaunchDescription, GroupAction=GroupAction,
                      SetEnvironmentVariable=SetEnvironmentVariable, LogInfo=LogInfo,
                      SetLaunchConfiguration=SetLaunchConfiguration,
                      AppendEnvironmentVariable=AppendEnvironmentVariable,
                      UnsetEnvironmentVariable=UnsetEnvironmentVariable, TimerAction=TimerAction,
                      Shutdown=Shutdown, ExecuteProcess=ExecuteProcess)
    substitutions = _module("launch.substitutions", LaunchConfiguration=LaunchConfiguration,
                            TextSubstitution=TextSubstitution, EnvironmentVariable=EnvironmentVariable,
                            ThisLaunchFileDir=ThisLaunchFileDir, PathJoinSubstitution=PathJoinSubstitution,
                            PythonExpression=PythonExpression, Command=Command,
                            FindExecutable=FindExecutable)
    conditions = _module("launch.conditions", IfCondition=IfCondition, UnlessCondition=UnlessCondition)
    sources = _module("launch.launch_description_sources",
                      PythonLaunchDescriptionSource=PythonLaunchDescriptionSource,
                      AnyLaunchDescriptionSource=AnyLaunchDescriptionSource,
                      XMLLaunchDescriptionSource=XMLLaunchDescriptionSource,
                      FrontendLaunchDescriptionSource=FrontendLaunchDescriptionSource,
                      YAMLLaunchDescriptionSource=YAMLLaunchDescriptionSource)
    launch = _module("launch", LaunchDescription=LaunchDescription, actions=actions,
                     substitutions=substitutions, conditions=conditions,
                     launch_description_sources=sources)
    ros_actions = _module("launch_ros.actions", Node=Node, PushRosNamespace=PushRosNamespace,
                          PushROSNamespace=PushRosNamespace, SetParameter=SetParameter, SetRemap=SetRemap,
                          ComposableNodeContainer=ComposableNodeContainer,
                          LoadComposableNodes=LoadComposableNodes)
    ros_subs = _module("launch_ros.substitutions", FindPackageShare=FindPackageShare,
                       FindPackagePrefix=FindPackagePrefix)
    descriptions = _module("launch_ros.descriptions", ComposableNode=ComposableNode,
                           ParameterValue=ParameterValue, ParameterFile=ParameterFile)
    param_descriptions = _module("launch_ros.parameter_descriptions", ParameterValue=ParameterValue,
                                 ParameterFile=ParameterFile)
    launch_ros = _module("launch_ros", actions=ros_actions, substitutions=ros_subs,
                         descriptions=descriptions, parameter_descriptions=param_descriptions)
    packages = _module("ament_index_python.packages",
                       get_package_share_directory=get_package_share_directory)
    ament = _module("ament_index_python", packages=packages,
                    get_package_share_directory=get_package_share_directory)
    return {m.__name__: m for m in (launch, actions, substitutions, conditions, sources, launch_ros,
                                    ros_actions, ros_subs, descriptions, param_descriptions, ament,
                                    packages)}


def _importer(fakes: dict[str, types.ModuleType]):
    real_import = builtins.__import__

    def import_(name: str, globals_: Any = None, locals_: Any = None, fromlist: Any = (), level: int = 0):
        if level == 0 and name.split(".")[0] in _FAKE_ROOTS:
            if name not in fakes:
                raise _Unsupported(name)
            return fakes[name] if fromlist else fakes[name.split(".")[0]]
        return real_import(name, globals_, locals_, fromlist, level)

    return import_


# ----------------------------------------------------------------------------- conversion

def read_launch_py(path: Path, env: Mapping[str, str] | None = None):
    """Run a Python launch file's ``generate_launch_description()`` with the stand-in API
    and return the equivalent (not yet validated) ``<launch>`` element tree.

    Args:
        path: the file.
        env: the launch environment (``get_package_share_directory``); default ``os.environ``.

    Raises:
        KatazukeError: ``FILE:LINE:`` the file fails, uses API outside the subset (the
            message says it needs ROS's ``launch`` package), or returns something else.
    """
    from katazuke.launcher.xml import Element

    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
        code = compile(source, str(path), "exec")
    except OSError as exc:
        raise KatazukeError(f"{path}:1: cannot read launch file: {exc.strerror}") from None
    except SyntaxError as exc:
        raise KatazukeError(f"{path}:{exc.lineno or 1}: not valid Python: {exc.msg}") from None
    safe_builtins = dict(vars(builtins))
    safe_builtins["__import__"] = _importer(_modules())
    namespace: dict[str, Any] = {"__builtins__": safe_builtins, "__file__": str(path),
                                 "__name__": "__katazuke_launch__"}
    previous = _State.file, _State.env
    _State.file, _State.env = str(path), os.environ if env is None else env
    try:
        exec(code, namespace)
        generate = namespace.get("generate_launch_description")
        if not callable(generate):
            raise KatazukeError(f"{path}:1: a Python launch file must define generate_launch_description()")
        description = generate()
        if not isinstance(description, LaunchDescription):
            raise KatazukeError(f"{path}:1: generate_launch_description() must return a LaunchDescription, "
                                f"got {type(description).__name__}")
        root = Element("launch", {}, path, 1)
        root.children = [_convert(e, path) for e in description.entities]
        return root
    except KatazukeError:
        raise
    except _Unsupported as exc:
        raise KatazukeError(f"{path}:{_error_line(exc, path)}: {exc} is beyond the subset of the launch "
                            "API that katazuke launch interprets; this file needs ROS's `launch` package "
                            "(run it with ros2 launch)") from None
    except SystemExit as exc:
        raise KatazukeError(f"{path}:{_error_line(exc, path)}: the launch file called "
                            f"sys.exit({exc.code!r})") from None
    except Exception as exc:  # the launch file's own code failed
        raise KatazukeError(f"{path}:{_error_line(exc, path)}: the launch file raised "
                            f"{type(exc).__name__}: {exc}") from None
    finally:
        _State.file, _State.env = previous


def _error_line(exc: BaseException, path: Path) -> int:
    line = getattr(exc, "line", None) or 1
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _element(tag: str, action: Any, path: Path, attrs: dict[str, Any], children: list | None = None,
             conditional: bool = True):
    """An element for ``action`` (its condition becomes ``if``/``unless`` unless the
    element is one of the action's parts, ``conditional=False``)."""
    from katazuke.launcher.xml import Element

    el = Element(tag, {}, path, getattr(action, "where", 1), list(children or []), raw=False)
    condition = getattr(action, "condition", None) if conditional else None
    if condition is not None:
        if not isinstance(condition, _Condition):
            raise _Unsupported(f"condition {type(condition).__name__}")
        attrs[condition.attr] = condition.expr
    for name, value in attrs.items():
        if value is None:
            continue
        el.templates[name] = _template(value)
        el.attrs[name] = "".join(t if isinstance(t, str) else "$(...)" for t in el.templates[name])
    return el


def _args_template(values: Iterable[Any]) -> Template:
    """A list of arguments as one ``args`` template: literal words quoted so the command
    line splitting gives them back one by one."""
    out: list[Any] = []
    for i, v in enumerate(values):
        if i:
            out.append(" ")
        t = _template(v)
        out.extend(shlex.quote(x) if isinstance(x, str) else x for x in t)
    return tuple(out)


def _params(value: Any, path: Path, where: int) -> list:
    from katazuke.launcher.xml import Element

    out = []
    for entry in value or []:
        if isinstance(entry, dict):
            for name, v in entry.items():
                out.append(_param_element(str(name), v, path, where))
        else:
            el = Element("param", {}, path, where, raw=False)
            if isinstance(entry, ParameterFile):
                el.templates["allow_substs"] = _template(bool(entry.allow_substs))
                el.attrs["allow_substs"] = "(flag)"
                entry = entry.path
            el.templates["from"] = _template(entry)
            el.attrs["from"] = "(file)"
            out.append(el)
    return out


_VALUE_TYPES = {str: "str", int: "int", float: "float", bool: "bool"}


def _param_element(name: str, value: Any, path: Path, where: int):
    from katazuke.launcher.xml import Element

    el = Element("param", {"name": name}, path, where, raw=False)
    el.templates["name"] = (name,)
    if isinstance(value, dict):
        el.children = [_param_element(str(k), v, path, where) for k, v in value.items()]
        return el
    if isinstance(value, ParameterValue):
        type_id = _VALUE_TYPES.get(value.value_type, "yaml") if value.value_type is not None else "yaml"
        if value.value_type is not None and value.value_type not in _VALUE_TYPES:
            raise _Unsupported(f"ParameterValue(value_type={value.value_type!r})")
        el.attrs["type"], el.templates["type"] = type_id, (type_id,)
        el.templates["value"] = _template(value.value)
        el.attrs["value"] = "(value)"
        return el
    literal = isinstance(value, (bool, int, float, list, tuple)) and not any(
        isinstance(v, _Subst) for v in (value if isinstance(value, (list, tuple)) else []))
    if isinstance(value, str):  # a Python string stays a string
        el.attrs["type"], el.templates["type"] = "str", ("str",)
        el.templates["value"] = (value,)
    elif literal:
        el.templates["value"] = (yaml.safe_dump(list(value) if isinstance(value, tuple) else value,
                                                default_flow_style=True).strip().removesuffix("...").strip(),)
    else:  # a substitution: typed from its result, as launch_ros does
        el.templates["value"] = _template(value)
    el.attrs["value"] = "(value)"
    return el


def _convert(action: Any, path: Path):
    try:
        return _convert_action(action, path)
    except _Unsupported as exc:
        exc.line = exc.line or getattr(action, "where", None)
        raise


def _convert_action(action: Any, path: Path):
    from katazuke.launcher.xml import Element

    if isinstance(action, DeclareLaunchArgument):
        el = _element("arg", action, path, {"name": action.name, "default": action.default})
        el.attrs["description"] = action.description or ""
        el.templates["description"] = (action.description or "",)
        for c in action.choices or []:
            ch = Element("choice", {"value": str(c)}, path, action.where, raw=False)
            ch.templates["value"] = (str(c),)
            el.children.append(ch)
        return el
    if isinstance(action, SetEnvironmentVariable):
        return _element("set_env", action, path, {"name": action.name, "value": action.value})
    if isinstance(action, LogInfo):
        return _element("log", action, path, {"message": action.msg})
    if isinstance(action, PushRosNamespace):
        return _element("push_ros_namespace", action, path, {"namespace": action.namespace})
    if isinstance(action, SetParameter):
        return _element("set_parameter", action, path, {"name": action.name, "value": action.value})
    if isinstance(action, SetRemap):
        return _element("set_remap", action, path, {"from": action.src, "to": action.dst})
    if isinstance(action, GroupAction):
        children = [_convert(a, path) for a in action.actions]
        for k, v in action.keep.items():
            children.insert(0, _element("keep", action, path, {"name": k, "value": v}, conditional=False))
        return _element("group", action, path, {"scoped": action.scoped, "forwarding": action.forwarding},
                        children)
    if isinstance(action, IncludeLaunchDescription):
        args = [_element("arg", action, path, {"name": k, "value": v}, conditional=False)
                for k, v in action.arguments]
        return _element("include", action, path, {"file": action.source.path}, args)
    if isinstance(action, SetLaunchConfiguration):
        return _element("let", action, path, {"name": action.name, "value": action.value})
    if isinstance(action, AppendEnvironmentVariable):
        return _element("append_env", action, path, {
            "name": action.name, "value": action.value, "prepend": action.prepend,
            "separator": action.separator})
    if isinstance(action, UnsetEnvironmentVariable):
        return _element("unset_env", action, path, {"name": action.name})
    if isinstance(action, TimerAction):
        return _element("timer", action, path, {"period": action.period},
                        [_convert(a, path) for a in action.actions])
    if isinstance(action, Shutdown):
        return _element("shutdown", action, path, {"reason": action.reason})
    if isinstance(action, ExecuteProcess):
        kw = dict(action.kwargs)
        attrs = {attr: kw.pop(key) for key, attr in _PROCESS_KWARGS.items() if key in kw}
        action.condition = kw.pop("condition", None)
        children = [_element("env", action, path, {"name": n, "value": v}, conditional=False)
                    for n, v in (kw.pop("additional_env", None) or {}).items()]
        _no_kwargs("ExecuteProcess", kw)
        el = _element("executable", action, path, attrs, children)
        el.templates["cmd"] = _args_template(action.cmd)
        el.attrs["cmd"] = "(list)"
        return el
    if isinstance(action, ComposableNodeContainer):
        kw = dict(action.kwargs)
        attrs = {attr: kw.pop(key) for key, attr in _NODE_KWARGS.items() if key in kw}
        action.condition = kw.pop("condition", None)
        children = _params(kw.pop("parameters", None), path, action.where)
        children += [_element("remap", action, path, {"from": a, "to": b}, conditional=False)
                     for a, b in kw.pop("remappings", None) or []]
        children += [_component(n, path) for n in action.nodes]
        arguments = kw.pop("arguments", None)
        _no_kwargs("ComposableNodeContainer", kw)
        el = _element("node_container", action, path, attrs, children)
        if arguments:
            el.templates["args"] = _args_template(arguments)
            el.attrs["args"] = "(list)"
        return el
    if isinstance(action, LoadComposableNodes):
        return _element("load_composable_node", action, path, {"target": action.target},
                        [_component(n, path) for n in action.nodes])
    if isinstance(action, Node):
        kw = dict(action.kwargs)
        attrs: dict[str, Any] = {}
        for key, attr in _NODE_KWARGS.items():
            if key in kw:
                attrs[attr] = kw.pop(key)
        action.condition = kw.pop("condition", None)
        children = _params(kw.pop("parameters", None), path, action.where)
        for src, dst in kw.pop("remappings", None) or []:
            children.append(_element("remap", action, path, {"from": src, "to": dst}, conditional=False))
        for name, value in (kw.pop("additional_env", None) or {}).items():
            children.append(_element("env", action, path, {"name": name, "value": value}, conditional=False))
        arguments, ros_arguments = kw.pop("arguments", None), kw.pop("ros_arguments", None)
        _no_kwargs("Node", kw)
        el = _element("node", action, path, attrs, children)
        for name, values in (("args", arguments), ("ros_args", ros_arguments)):
            if values:
                el.templates[name] = _args_template(values)
                el.attrs[name] = "(list)"
        return el
    raise _Unsupported(f"the action {type(action).__name__}")


def _component(node: Any, path: Path):
    if not isinstance(node, ComposableNode):
        raise _Unsupported(f"a composable node description of type {type(node).__name__}")
    children = _params(node.parameters, path, node.where)
    children += [_element("remap", node, path, {"from": a, "to": b}, conditional=False)
                 for a, b in node.remappings or []]
    for extra in node.extra or []:
        for name, value in extra.items():
            children.append(_element("extra_arg", node, path, {"name": name, "value": value},
                                     conditional=False))
    return _element("composable_node", node, path, {"pkg": node.package, "plugin": node.plugin,
                                                    "name": node.name, "namespace": node.namespace},
                    children)
