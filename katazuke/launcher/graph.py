"""The resolved launch graph: what will run, with every substitution performed.

A :class:`LaunchGraph` is what :func:`katazuke.launcher.xml.load_launch` returns and
what the :class:`~katazuke.launcher.supervisor.Supervisor` runs. Each
:class:`ProcessSpec` is one OS process (a ``<node>`` or an ``<executable>``).

:meth:`ProcessSpec.argv` builds the command line the way ``launch_ros`` does::

    [launch-prefix...] EXE [args...] [--ros-args ros_args...] --ros-args
        -r __node:=NAME  -r __ns:=/NS            (when given / pushed)
        -p k:=v ...                              (<set_parameter>, in scope order)
        --params-file F ...                      (<param from=...> files and one
                                                  generated file per <param name=...>)
        -r from:=to ...                          (<set_remap> then the node's <remap>)

Generated parameter files use the fully qualified node name as the YAML key when
both name and namespace are known, ``/**`` otherwise (as ``launch_ros``).
"""
from __future__ import annotations

import dataclasses
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml

from katazuke.errors import KatazukeError

__all__ = ["ParamFile", "ParamDict", "ProcessSpec", "ComponentSpec", "LaunchGraph", "prefix_namespace",
           "make_namespace_absolute", "typed_value"]


def make_namespace_absolute(ns: str | None) -> str | None:
    """``"a"`` -> ``"/a"``; None stays None."""
    if ns is None:
        return None
    return ns if ns.startswith("/") else "/" + ns


def prefix_namespace(base_ns: str | None, ns: str | None) -> str | None:
    """``ns`` below ``base_ns`` unless ``ns`` is absolute (launch_ros semantics).

    Trailing slashes are stripped (except for the root ``/``).
    """
    if base_ns is None and ns is None:
        return None
    if ns is None:
        combined = base_ns
    elif not base_ns or ns.startswith("/"):
        combined = ns
    else:
        combined = ("" if base_ns == "/" else base_ns.rstrip("/")) + "/" + ns
    if combined and combined != "/":
        combined = combined.rstrip("/") or "/"
    return combined


_SCALARS = (bool, int, float, str)


def typed_value(text: str) -> Any:
    """A parameter value from its text, with YAML typing as launch_ros does.

    ``"3"`` -> 3, ``"1.5"`` -> 1.5, ``"true"`` -> True, ``"[1, 2]"`` -> [1, 2],
    anything YAML cannot read (or reads as a string) stays the string.

    Raises:
        ValueError: the text is YAML for a mapping, a null (other than the empty string)
            or a list mixing types: ROS parameters cannot hold those.
    """
    if text == "":
        return ""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list):
        if not value:
            raise ValueError(f"'{text}' is an empty list; ROS cannot infer its type")
        kinds = {type(v) for v in value}
        if kinds <= {int, float} and float in kinds:
            return [float(v) for v in value]
        if len(kinds) == 1 and kinds.pop() in _SCALARS:
            return value
        raise ValueError(f"'{text}' is a list of mixed types; ROS parameters need one type")
    raise ValueError(f"'{text}' is YAML for {type(value).__name__}; a parameter value must be "
                     "a bool, number, string or a list of one of those")


@dataclass(frozen=True)
class ParamFile:
    """``<param from="file.yaml"/>``: passed as ``--params-file`` (absolute path).

    Attributes:
        path: the file.
        text: with ``allow_substs="true"``, the file's text after substitution (written to
            a generated file at run time); None passes ``path`` itself.
    """

    path: Path
    text: str | None = None


@dataclass(frozen=True)
class ParamDict:
    """``<param name value/>`` (possibly nested): written to a generated params file."""

    values: dict[str, Any]


@dataclass
class ComponentSpec:
    """A ``<composable_node>`` of a container (its own node inside the container process).

    Attributes:
        package, plugin: the component's package and class (``composition::Talker``).
        node_name, namespace: as for a node (namespace absolute, after push_ros_namespace).
        global_params, params, remaps: as for :class:`ProcessSpec`.
        extra_args: ``<extra_arg>`` name -> typed value (``use_intra_process_comms``).
        source: ``FILE:LINE`` of the element.
    """

    package: str
    plugin: str
    node_name: str
    namespace: str | None
    global_params: list[tuple[str, Any]] = field(default_factory=list)
    params: list["ParamFile | ParamDict"] = field(default_factory=list)
    remaps: list[tuple[str, str]] = field(default_factory=list)
    extra_args: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def fully_qualified_name(self) -> str:
        return prefix_namespace(self.namespace or "/", self.node_name) or self.node_name

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"package": self.package, "plugin": self.plugin, "name": self.node_name,
                             "namespace": self.namespace,
                             "fully_qualified_name": self.fully_qualified_name, "source": self.source}
        if self.global_params:
            d["global_params"] = {k: v for k, v in self.global_params}
        if self.params:
            d["params"] = _describe_params(self.params)
        if self.remaps:
            d["remaps"] = [f"{a}:={b}" for a, b in self.remaps]
        if self.extra_args:
            d["extra_args"] = dict(self.extra_args)
        return d


def _describe_params(params: list["ParamFile | ParamDict"]) -> list[Any]:
    return [str(p.path) if isinstance(p, ParamFile) else dict(p.values) for p in params]


@dataclass
class ProcessSpec:
    """One process of the launch.

    Attributes:
        label: unique display name used as the ``[label]`` output prefix.
        kind: ``"node"``, ``"executable"`` or ``"container"`` (a ``<node_container>``, a
            node whose components are listed in ``components``).
        executable: absolute path of the program (``cmd[0]`` for executables).
        args: arguments after the executable (``args`` attribute / rest of ``cmd``).
        package: the ``pkg`` of a node (None for executables).
        node_name: ``-r __node:=`` value (None: the node's default name).
        namespace: absolute namespace after ``push_ros_namespace`` (None: not given).
        ros_args: the node's ``ros_args`` attribute, split.
        global_params: ``<set_parameter>`` values in scope, (name, typed value).
        params: the node's ``<param>`` entries in order.
        remaps: ``<set_remap>`` rules in scope followed by the node's ``<remap>``.
        env: the complete environment of the process.
        env_changes: variables that differ from the launcher's own environment
            (for ``--print``); None values mean "unset".
        cwd: working directory (None: the launcher's).
        prefix: ``launch-prefix`` split into words.
        shell: run through ``/bin/sh -c``.
        output: ``screen``, ``log`` or ``both`` (ROS default ``log``: stdout to the
            log file only, stderr to screen and log).
        respawn, respawn_delay, respawn_max_retries: restart policy (-1: unlimited).
        on_exit: ``"shutdown"`` marks a required process.
        source: ``FILE:LINE`` of the element.
        global_param_files: ``<set_parameters_from_file>`` files in scope (passed first).
        start_delay: seconds after the launch starts (``<timer period>``, summed when nested).
        emulate_tty: the file asked for a pseudo-terminal (recorded; output is read from a pipe).
        sigterm_timeout, sigkill_timeout: the file's escalation delays (None: the launcher's).
        components: a container's ``<composable_node>`` entries, in load order.
    """

    label: str
    kind: Literal["node", "executable", "container"]
    executable: str
    args: list[str] = field(default_factory=list)
    package: str | None = None
    node_name: str | None = None
    namespace: str | None = None
    ros_args: list[str] = field(default_factory=list)
    global_params: list[tuple[str, Any]] = field(default_factory=list)
    params: list[ParamFile | ParamDict] = field(default_factory=list)
    remaps: list[tuple[str, str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    env_changes: dict[str, str | None] = field(default_factory=dict)
    cwd: str | None = None
    prefix: list[str] = field(default_factory=list)
    shell: bool = False
    output: str = "log"
    respawn: bool = False
    respawn_delay: float = 0.0
    respawn_max_retries: int = -1
    on_exit: str | None = None
    source: str = ""
    global_param_files: list[ParamFile] = field(default_factory=list)
    start_delay: float = 0.0
    emulate_tty: bool = False
    sigterm_timeout: float | None = None
    sigkill_timeout: float | None = None
    components: list[ComponentSpec] = field(default_factory=list)

    @property
    def fully_qualified_name(self) -> str | None:
        """``/ns/name`` when both are known (the key launch_ros uses), else None."""
        if self.kind == "executable" or self.node_name is None or self.namespace is None:
            return None
        return prefix_namespace(self.namespace, self.node_name)

    def param_file_text(self, params: ParamDict) -> str:
        """The YAML launch_ros writes for a :class:`ParamDict`."""
        key = self.fully_qualified_name or "/**"
        return yaml.safe_dump({key: {"ros__parameters": params.values}}, default_flow_style=False)

    def argv(self, param_dir: Path | None = None) -> list[str]:
        """The command line.

        Args:
            param_dir: where generated parameter files are written (one per
                :class:`ParamDict`). None writes nothing and shows ``<generated:N>``
                placeholders instead (used by ``--print``).
        """
        cmd = [self.executable, *self.args]
        if self.kind != "executable":
            if self.ros_args:
                cmd += ["--ros-args", *self.ros_args]
            cmd.append("--ros-args")
            if self.node_name is not None:
                cmd += ["-r", f"__node:={self.node_name}"]
            if self.namespace is not None:
                cmd += ["-r", f"__ns:={self.namespace}"]
            for name, value in self.global_params:
                cmd += ["-p", f"{name}:={value}"]
            for i, p in enumerate([*self.global_param_files, *self.params]):
                if isinstance(p, ParamFile) and p.text is None:
                    cmd += ["--params-file", str(p.path)]
                elif param_dir is None:
                    cmd += ["--params-file", f"<generated:{i}>"]
                else:
                    path = param_dir / f"{self.label}_params_{i}.yaml"
                    text = p.text if isinstance(p, ParamFile) else self.param_file_text(p)
                    path.write_text(text or "", encoding="utf-8")
                    cmd += ["--params-file", str(path)]
            for src, dst in self.remaps:
                cmd += ["-r", f"{src}:={dst}"]
        if self.shell:
            cmd = ["/bin/sh", "-c", " ".join(cmd)]
        return [*self.prefix, *cmd]

    def describe(self) -> dict[str, Any]:
        """A plain dict for ``katazuke launch --print``."""
        d: dict[str, Any] = {"label": self.label, "kind": self.kind, "source": self.source,
                             "executable": self.executable}
        if self.kind != "executable":
            d.update(package=self.package, name=self.node_name, namespace=self.namespace,
                     fully_qualified_name=self.fully_qualified_name)
        if self.args:
            d["args"] = list(self.args)
        if self.global_params:
            d["global_params"] = {k: v for k, v in self.global_params}
        if self.global_param_files:
            d["global_param_files"] = [str(p.path) for p in self.global_param_files]
        if self.params:
            d["params"] = _describe_params(self.params)
        if self.remaps:
            d["remaps"] = [f"{a}:={b}" for a, b in self.remaps]
        if self.env_changes:
            d["env"] = dict(self.env_changes)
        if self.cwd:
            d["cwd"] = self.cwd
        d["output"] = self.output
        if self.respawn:
            d["respawn"] = True
            d["respawn_delay"] = self.respawn_delay
            if self.respawn_max_retries >= 0:
                d["respawn_max_retries"] = self.respawn_max_retries
        if self.on_exit:
            d["on_exit"] = self.on_exit
        if self.start_delay:
            d["start_delay"] = self.start_delay
        if self.emulate_tty:
            d["emulate_tty"] = True
        if self.sigterm_timeout is not None:
            d["sigterm_timeout"] = self.sigterm_timeout
        if self.sigkill_timeout is not None:
            d["sigkill_timeout"] = self.sigkill_timeout
        if self.kind == "container":
            d["components"] = [c.describe() for c in self.components]
        d["command"] = " ".join(shlex.quote(a) for a in self.argv(None))
        return d


def _component_executables(plugin: str) -> list[str]:
    """Executable names a component's package may run it as: the class name in snake case,
    then as written (``pkg::ObjectMap`` -> ``object_map``, ``ObjectMap``)."""
    cls = plugin.split("::")[-1].split(".")[-1]
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", cls).lower()
    return list(dict.fromkeys([snake, cls]))


@dataclass
class LaunchGraph:
    """Everything a launch file resolved to.

    Attributes:
        file: the top-level launch file.
        processes: in launch order.
        arguments: declared top-level arguments, name -> (value, description).
        messages: ``<log>`` messages, in order.
    """

    file: Path
    processes: list[ProcessSpec] = field(default_factory=list)
    arguments: dict[str, tuple[str, str]] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    shutdown: tuple[float, str] | None = None

    def describe(self) -> dict[str, Any]:
        """A plain dict (YAML-printable) of the whole graph."""
        d: dict[str, Any] = {
            "file": str(self.file),
            "arguments": {k: {"value": v, "description": d} for k, (v, d) in self.arguments.items()},
            "processes": [p.describe() for p in self.processes],
        }
        if self.messages:
            d["messages"] = list(self.messages)
        if self.shutdown is not None:
            d["shutdown"] = {"after_s": self.shutdown[0], "reason": self.shutdown[1]}
        return d

    def runnable(self, env: Mapping[str, str] | None = None) -> tuple["LaunchGraph", list[str]]:
        """The graph as ``katazuke launch`` runs it, and one note per change.

        There is no C++ component container here (and no load service client), so each
        component of a ``<node_container>`` runs as its own process: the executable of its
        package named after the plugin's class (``composition::Talker`` ->
        ``lib/composition/talker``, else ``Talker``), with the component's name, namespace,
        parameters and remaps, the container's environment and output settings. The
        container itself is not started. ``extra_arg`` entries (``use_intra_process_comms``)
        have no meaning for a process of one node and are named in the note.

        Args:
            env: where packages are looked up (``AMENT_PREFIX_PATH``); default: each
                container's own environment.

        Raises:
            KatazukeError: ``FILE:LINE:`` of a component whose package has no such executable.
        """
        from katazuke.launcher.substitutions import SubstitutionError, find_package_prefix

        out = dataclasses.replace(self, processes=[])
        notes: list[str] = []
        labels = {p.label for p in self.processes}
        for proc in self.processes:
            if proc.kind != "container":
                out.processes.append(proc)
                continue
            if not proc.components:
                if proc.executable:
                    out.processes.append(proc)
                else:
                    notes.append(f"container {proc.fully_qualified_name} ({proc.source}) has no components "
                                 "and its executable is not installed: not started")
                continue
            for comp in proc.components:
                names = _component_executables(comp.plugin)
                try:
                    libdir = find_package_prefix(comp.package, proc.env if env is None else env) \
                        / "lib" / comp.package
                except SubstitutionError as exc:
                    raise KatazukeError(f"{comp.source}: component {comp.plugin}: {exc}") from None
                exe = next((libdir / n for n in names
                            if (libdir / n).is_file() and os.access(libdir / n, os.X_OK)), None)
                if exe is None:
                    raise KatazukeError(
                        f"{comp.source}: component {comp.plugin} cannot run here: katazuke launch has no "
                        f"C++ component container, and package '{comp.package}' has no executable "
                        f"{' or '.join(names)} in {libdir} to run it as its own process (run this file "
                        "with ros2 launch on a full ROS install)")
                label, n = comp.node_name, 1
                while label in labels:
                    n += 1
                    label = f"{comp.node_name}-{n}"
                labels.add(label)
                spec = dataclasses.replace(
                    proc, label=label, kind="node", executable=str(exe), package=comp.package,
                    node_name=comp.node_name, namespace=comp.namespace, args=[], ros_args=[],
                    global_params=list(comp.global_params), global_param_files=[],
                    params=list(comp.params), remaps=list(comp.remaps), components=[], source=comp.source)
                out.processes.append(spec)
                extra = (f"; extra_arg {', '.join(f'{k}={v}' for k, v in comp.extra_args.items())} "
                         "not applicable to a process of one node") if comp.extra_args else ""
                notes.append(f"component {comp.fully_qualified_name} ({comp.plugin}) of container "
                             f"{proc.fully_qualified_name} runs as its own process {exe} (no component "
                             f"container here){extra}")
        return out, notes

    def process(self, label: str) -> ProcessSpec:
        """The process with that label (KeyError if none)."""
        for p in self.processes:
            if p.label == label:
                return p
        raise KeyError(label)
