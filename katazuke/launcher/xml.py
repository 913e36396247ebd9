"""ROS 2 launch files (XML, YAML; Python through :mod:`katazuke.launcher.pylaunch`): load
(with line numbers), validate, and resolve into a graph.

:func:`load_launch` reads a launch file the way ``ros2 launch`` executes it: entities
are visited in document order against a context of launch configurations
(``<arg>``, ``<let>``, ``<include>`` arguments), the pushed ROS namespace, the
``<set_parameter>`` / ``<set_remap>`` rules and the environment. The result is a
:class:`~katazuke.launcher.graph.LaunchGraph` of processes with every substitution
performed; nothing is started.

Semantics kept from ``launch`` / ``launch_ros`` (so files stay valid for ``ros2 launch``):

- ``<group>`` is scoped by default (``scoped="false"`` leaks its changes);
  ``forwarding="false"`` starts the group with only its ``<keep name value/>``
  configurations. A scope covers launch configurations, the ROS namespace,
  ``set_parameter``/``set_remap`` rules and ``set_env``/``unset_env``.
- ``<include>`` is *not* scoped: its arguments and anything the included file sets
  stay visible afterwards (wrap it in ``<group>`` to scope it). An included file's
  arguments without ``default`` must be passed by the ``<include>``.
- ``<push_ros_namespace>`` prefixes relative namespaces; absolute ones replace it.
- ``if``/``unless`` accept ``true``/``false``/``1``/``0`` (case-insensitive).
- Parameter values are typed as launch_ros types them (:meth:`_Loader.param_value`);
  ``<set_parameters_from_file>`` files, ``<param from>`` files and each ``<param name>``
  become ``--params-file`` arguments in order.
- ``<timer>``/``<ros_timer>`` delay the processes inside; ``<shutdown>`` ends the launch
  when reached; a ``<node_container>`` lists its ``<composable_node>`` children (and those
  a later ``<load_composable_node>`` adds) as components.

Stricter than ROS on purpose: a missing parameter file is an error (ROS only warns),
unknown or unsupported tags/attributes are errors. Every error is a
:class:`~katazuke.errors.KatazukeError` whose message starts with ``FILE:LINE:``.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import xml.parsers.expat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from katazuke.errors import KatazukeError
from katazuke.launcher.graph import (ComponentSpec, LaunchGraph, ParamDict, ParamFile, ProcessSpec,
                                     make_namespace_absolute, prefix_namespace, typed_value)
from katazuke.launcher.substitutions import (Sub, SubstitutionContext, SubstitutionError,
                                             Template, evaluate, find_package_prefix,
                                             parse_template)

__all__ = ["Element", "read_launch_xml", "read_launch_yaml", "read_launch_file", "load_launch",
           "resolve_launch_file", "parse_launch_arguments", "ros_log_dir", "SAFE_ENV_DEFAULTS"]

#: Environment defaults every child gets unless the launcher's environment sets them.
SAFE_ENV_DEFAULTS = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}

_COND = frozenset({"if", "unless"})
_ACTIONS = frozenset({"arg", "let", "node", "executable", "include", "group", "push_ros_namespace",
                      "push-ros-namespace", "set_parameter", "set_remap", "set_env", "unset_env",
                      "append_env", "log", "timer", "ros_timer", "reset", "shutdown",
                      "set_parameters_from_file", "set_use_sim_time", "node_container",
                      "load_composable_node", "lifecycle_node", "unset", "reset_env",
                      "set_ros_log_dir"})
_PROCESS_ATTRS = frozenset({"name", "cwd", "launch-prefix", "output", "respawn", "respawn_delay",
                            "respawn_max_retries", "on_exit", "shell", "emulate_tty",
                            "sigterm_timeout", "sigkill_timeout"})
_NODE_ATTRS = frozenset({"pkg", "exec", "namespace", "args", "ros_args", "exec_name"})
#: ``<param type=...>`` identifiers (launch's ``get_data_type_from_identifier``); None: guess.
_PARAM_TYPES: dict[str, tuple[type | None, bool]] = {
    "str": (str, False), "bool": (bool, False), "float": (float, False), "int": (int, False),
    "list_of_str": (str, True), "list_of_bool": (bool, True), "list_of_float": (float, True),
    "list_of_int": (int, True), "yaml": (None, False),
}


@dataclass(frozen=True)
class _Spec:
    attrs: frozenset[str]
    required: frozenset[str] = frozenset()
    children: frozenset[str] = frozenset()


def _spec(attrs: set[str], required: set[str] = frozenset(), children: set[str] = frozenset()) -> _Spec:
    return _Spec(frozenset(attrs), frozenset(required), frozenset(children))


# Keyed by tag, or "parent/tag" where a tag means something else under that parent.
_SPECS: dict[str, _Spec] = {
    "launch": _spec({"version", "deprecated"}, children=_ACTIONS),
    "arg": _spec({"name", "default", "description"} | _COND, {"name"}, {"choice"}),
    "arg/choice": _spec({"value"}, {"value"}),
    "let": _spec({"name", "value"} | _COND, {"name", "value"}),
    "node": _spec(_NODE_ATTRS | _PROCESS_ATTRS | _COND, {"exec"}, {"param", "remap", "env"}),
    "lifecycle_node": _spec(_NODE_ATTRS | _PROCESS_ATTRS | _COND | {"autostart"}, {"exec", "name"},
                            {"param", "remap", "env"}),
    "unset": _spec({"name"} | _COND, {"name"}),
    "reset_env": _spec(set(_COND)),
    "set_ros_log_dir": _spec({"new_log_dir"} | _COND, {"new_log_dir"}),
    "executable": _spec({"cmd"} | _PROCESS_ATTRS | _COND, {"cmd"}, {"env"}),
    "node/param": _spec({"name", "value", "value-sep", "from", "type", "allow_substs"}, children={"param"}),
    "param/param": _spec({"name", "value", "value-sep", "type"}, {"name"}, {"param"}),
    "node/remap": _spec({"from", "to"}, {"from", "to"}),
    "node/env": _spec({"name", "value"}, {"name", "value"}),
    "executable/env": _spec({"name", "value"}, {"name", "value"}),
    "node_container": _spec(_NODE_ATTRS | _PROCESS_ATTRS | _COND, {"exec", "name"},
                            {"param", "remap", "env", "composable_node"}),
    "composable_node": _spec({"pkg", "plugin", "name", "namespace"} | _COND, {"pkg", "plugin", "name"},
                             {"param", "remap", "extra_arg"}),
    "composable_node/extra_arg": _spec({"name", "value"}, {"name", "value"}),
    "load_composable_node": _spec({"target"} | _COND, {"target"}, {"composable_node"}),
    "append_env": _spec({"name", "value", "prepend", "separator"} | _COND, {"name", "value"}),
    "timer": _spec({"period"} | _COND, {"period"}, _ACTIONS),
    "ros_timer": _spec({"period"} | _COND, {"period"}, _ACTIONS),
    "reset": _spec(set(_COND), children={"keep"}),
    "reset/keep": _spec({"name", "value"}, {"name", "value"}),
    "shutdown": _spec({"reason"} | _COND),
    "set_parameters_from_file": _spec({"filename", "node_name"} | _COND, {"filename"}),
    "set_use_sim_time": _spec({"value"} | _COND, {"value"}),
    "include": _spec({"file"} | _COND, {"file"}, {"arg"}),
    "include/arg": _spec({"name", "value"}, {"name", "value"}),
    "group": _spec({"scoped", "forwarding"} | _COND, children=_ACTIONS | {"keep"}),
    "group/keep": _spec({"name", "value"}, {"name", "value"}),
    "push_ros_namespace": _spec({"namespace"} | _COND, {"namespace"}),
    "push-ros-namespace": _spec({"namespace"} | _COND, {"namespace"}),
    "set_parameter": _spec({"name", "value"} | _COND, {"name", "value"}),
    "set_remap": _spec({"from", "to"} | _COND, {"from", "to"}),
    "set_env": _spec({"name", "value"} | _COND, {"name", "value"}),
    "unset_env": _spec({"name"} | _COND, {"name"}),
    "log": _spec({"message"} | _COND, {"message"}),
}
for _parent in ("node_container", "composable_node", "lifecycle_node"):
    _SPECS[f"{_parent}/param"] = _SPECS["node/param"]
    _SPECS[f"{_parent}/remap"] = _SPECS["node/remap"]
_SPECS["node_container/env"] = _SPECS["lifecycle_node/env"] = _SPECS["node/env"]
# Attributes kept verbatim (never substituted).
_PLAIN = {("arg", "description"), ("launch", "deprecated")}


@dataclass
class Element:
    """An XML element with its position and its attributes parsed as substitutions.

    Attributes:
        tag: element name.
        attrs: raw attribute values, in document order.
        templates: the same attributes parsed into substitution templates.
        children: child elements.
        file: the launch file.
        line: 1-based line of the start tag.
        raw: ``attrs`` hold the file's own text (False: a frontend built ``templates``
            itself and ``attrs`` only name them, as the Python frontend does).
    """

    tag: str
    attrs: dict[str, str]
    file: Path
    line: int
    children: list["Element"] = field(default_factory=list)
    templates: dict[str, Template] = field(default_factory=dict)
    raw: bool = True

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def error(self, message: str) -> KatazukeError:
        return KatazukeError(f"{self.where}: {message}")


def read_launch_xml(path: Path) -> Element:
    """Parse and validate one launch file (no substitution is performed yet).

    Raises:
        KatazukeError: ``FILE:LINE:`` malformed XML, a root other than ``<launch>``, an
            unknown tag or attribute, a missing required attribute, a bad substitution.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KatazukeError(f"{path}:1: cannot read launch file: {exc.strerror}") from None
    parser = xml.parsers.expat.ParserCreate()
    stack: list[Element] = []
    root: list[Element] = []

    def start(tag: str, attrs: list[str]) -> None:
        pairs = dict(zip(attrs[0::2], attrs[1::2]))
        el = Element(tag, pairs, path, parser.CurrentLineNumber)
        (stack[-1].children if stack else root).append(el)
        stack.append(el)

    def end(tag: str) -> None:
        stack.pop()

    parser.ordered_attributes = True
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        raise KatazukeError(f"{path}:{exc.lineno}: malformed XML: "
                            f"{xml.parsers.expat.ErrorString(exc.code)} (column {exc.offset + 1})") from None
    top = root[0]
    if top.tag != "launch":
        raise top.error(f"the root element must be <launch>, not <{top.tag}>")
    _validate(top, None)
    return top


def read_launch_yaml(path: Path) -> Element:
    """Parse and validate a YAML launch file (the ``launch_yaml`` frontend: the same tags
    and attributes as XML, ``launch:`` holding a list of ``{tag: {attribute: value, ...}}``;
    a list under ``children`` holds nested actions, a list under any other key holds
    child elements of that tag, e.g. ``param:``, ``remap:``, ``arg:``).

    Raises:
        KatazukeError: ``FILE:LINE:`` malformed YAML, a structure that is not a launch
            file, or any error :func:`read_launch_xml` reports.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KatazukeError(f"{path}:1: cannot read launch file: {exc.strerror}") from None
    try:
        doc = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise KatazukeError(f"{path}:{mark.line + 1 if mark else 1}: malformed YAML: "
                            f"{getattr(exc, 'problem', exc)}") from None

    def fail(node: yaml.Node, message: str) -> KatazukeError:
        return KatazukeError(f"{path}:{node.start_mark.line + 1}: {message}")

    def entity(node: yaml.Node, tag: str | None = None) -> Element:
        body: yaml.Node | None = node
        if tag is None:
            if not isinstance(node, yaml.MappingNode) or len(node.value) != 1:
                raise fail(node, "each action must be a mapping with one key, the tag "
                                 "(e.g. '- node: {pkg: ..., exec: ...}')")
            key, body = node.value[0]
            tag = str(key.value)
        el = Element(tag, {}, path, (body or node).start_mark.line + 1)
        if isinstance(body, yaml.ScalarNode) and body.value in ("", "~", "null"):
            return el
        if not isinstance(body, yaml.MappingNode):
            raise fail(body or node, f"<{tag}> must hold a mapping of attributes")
        for key, value in body.value:
            name = str(key.value)
            if isinstance(value, yaml.ScalarNode):
                el.attrs[name] = value.value
            elif isinstance(value, yaml.SequenceNode) and name == "children":
                el.children.extend(entity(v) for v in value.value)
            elif isinstance(value, yaml.SequenceNode) and all(isinstance(v, yaml.ScalarNode)
                                                               for v in value.value):
                items = yaml.safe_load(yaml.serialize(value))
                el.attrs[name] = yaml.safe_dump(items, default_flow_style=True).strip()
            elif isinstance(value, yaml.SequenceNode):
                el.children.extend(entity(v, name) for v in value.value)
            else:
                raise fail(value, f"'{name}' of <{tag}> must be a value or a list")
        return el

    if not (isinstance(doc, yaml.MappingNode) and len(doc.value) == 1 and doc.value[0][0].value == "launch"
            and isinstance(doc.value[0][1], yaml.SequenceNode)):
        raise KatazukeError(f"{path}:1: a YAML launch file must be 'launch:' holding a list of actions")
    root = Element("launch", {}, path, doc.start_mark.line + 1,
                   [entity(v) for v in doc.value[0][1].value])
    _validate(root, None)
    return root


def read_launch_file(path: Path, env: Mapping[str, str] | None = None) -> Element:
    """Read a launch file of any supported frontend, by extension: XML (``.xml``), YAML
    (``.yaml``/``.yml``) or Python (``.py``, the subset :mod:`katazuke.launcher.pylaunch`
    interprets; ``env`` is the environment its package lookups see)."""
    path = Path(path)
    if path.name.endswith((".yaml", ".yml")):
        return read_launch_yaml(path)
    if path.name.endswith(".py"):
        from katazuke.launcher.pylaunch import read_launch_py

        root = read_launch_py(path, env)
        _validate(root, None)
        return root
    return read_launch_xml(path)


def _validate(el: Element, parent: str | None) -> None:
    key = f"{parent}/{el.tag}" if parent and f"{parent}/{el.tag}" in _SPECS else el.tag
    spec = _SPECS[key]
    for name in el.attrs:
        if name not in spec.attrs:
            raise el.error(f"unknown attribute '{name}' on <{el.tag}>; allowed: "
                           + ", ".join(sorted(spec.attrs)))
    missing = sorted(spec.required - el.attrs.keys())
    if missing:
        raise el.error(f"<{el.tag}> needs the attribute(s) " + ", ".join(f"'{m}'" for m in missing))
    if "if" in el.attrs and "unless" in el.attrs:
        raise el.error(f"<{el.tag}> cannot have both 'if' and 'unless'")
    for name, value in el.attrs.items():
        if (el.tag, name) in _PLAIN:
            el.templates[name] = (value,)
            continue
        if name in el.templates:  # set by a frontend that builds substitutions itself
            continue
        try:
            el.templates[name] = parse_template(value)
        except SubstitutionError as exc:
            raise el.error(f"attribute '{name}': {exc}") from None
    for child in el.children:
        if child.tag not in spec.children:
            allowed = ", ".join(f"<{c}>" for c in sorted(spec.children)) or "no children"
            what = "unknown tag" if not any(k.split("/")[-1] == child.tag for k in _SPECS) else "tag"
            raise child.error(f"{what} <{child.tag}> is not allowed inside <{el.tag}> (allowed: {allowed})")
        _validate(child, el.tag)


# ----------------------------------------------------------------------------- resolution

@dataclass
class _Scope:
    configs: dict[str, str]
    env: dict[str, str]
    namespace: str | None = None
    global_params: list[tuple[str, Any]] = field(default_factory=list)
    remaps: list[tuple[str, str]] = field(default_factory=list)
    param_files: list[ParamFile] = field(default_factory=list)

    def copy(self) -> "_Scope":
        return _Scope(dict(self.configs), dict(self.env), self.namespace,
                      list(self.global_params), list(self.remaps), list(self.param_files))


_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$|^~$")
_MAX_INCLUDE_DEPTH = 32


def _check_node_name(el: Element, name: str) -> None:
    if not _NAME_RE.match(name):
        raise el.error(f"invalid node name '{name}': use letters, digits and '_', not starting "
                       "with a digit")


def _check_namespace(el: Element, ns: str) -> None:
    if ns == "/":
        return
    tokens = ns[1:].split("/")
    if not ns.startswith("/") or ns.endswith("/") or not all(_NAME_RE.match(t) for t in tokens):
        raise el.error(f"invalid namespace '{ns}': tokens of letters, digits and '_' separated by "
                       "single '/', not starting with a digit")


def _truthy(el: Element, attr: str, text: str, yaml_words: bool = False) -> bool:
    """``if``/``unless`` take true/false/1/0 (any case); other boolean attributes are read
    as YAML, which also accepts yes/no/on/off (``yaml_words``)."""
    low = text.strip().lower()
    if low in ("true", "1") or (yaml_words and low in ("yes", "on")):
        return True
    if low in ("false", "0") or (yaml_words and low in ("no", "off")):
        return False
    raise el.error(f"'{attr}' must be true/false (or 1/0), got '{text}'")


class _Loader:
    def __init__(self, env: Mapping[str, str], launch_args: Mapping[str, str],
                 child_env: Mapping[str, str], log_dir: Path | None = None) -> None:
        self.base_env = dict(env)
        self.child_env = dict(child_env)
        self.scope = _Scope(dict(launch_args), dict(env))
        self.file: Path | None = None
        self.stack: list[Path] = []
        self.graph: LaunchGraph | None = None
        self.labels: set[str] = set()
        self.log_dir = log_dir
        self.anon_names: dict[str, str] = {}
        self.delay = 0.0  # seconds of the enclosing <timer>s

    # -- helpers
    def ctx(self) -> SubstitutionContext:
        return SubstitutionContext(self.scope.configs, self.scope.env, self.file,
                                   params=dict(self.scope.global_params), log_dir=self.log_dir,
                                   anon_names=self.anon_names)

    def eval_text(self, el: Element, attr: str, text: str) -> str:
        """Parse and perform the substitutions of ``text`` (a piece of an attribute)."""
        try:
            return evaluate(parse_template(text), self.ctx())
        except SubstitutionError as exc:
            raise el.error(f"attribute '{attr}': {exc}") from None

    def seconds(self, el: Element, attr: str, default: str | None = None) -> float | None:
        text = self.sub(el, attr, default)
        if text is None:
            return None
        try:
            value = float(text)
        except ValueError:
            raise el.error(f"{attr} must be a number of seconds, got '{text}'") from None
        if value < 0:
            raise el.error(f"{attr} must be >= 0, got {value}")
        return value

    def sub(self, el: Element, attr: str, default: str | None = None) -> str | None:
        if attr not in el.templates:
            return default
        try:
            return evaluate(el.templates[attr], self.ctx())
        except SubstitutionError as exc:
            raise el.error(f"attribute '{attr}': {exc}") from None

    def sub_req(self, el: Element, attr: str) -> str:
        value = self.sub(el, attr)
        assert value is not None  # required attributes are checked by _validate
        return value

    def cmdline(self, el: Element, attr: str) -> list[str]:
        """Split a command line like launch's ``_parse_cmdline``: literal text is split with
        shell rules, a substitution's value is never split and sticks to adjacent text."""
        out: list[str] = []
        cur: list[str] | None = None
        for part in el.templates.get(attr, ()):
            if isinstance(part, Sub):
                try:
                    value = evaluate((part,), self.ctx())
                except SubstitutionError as exc:
                    raise el.error(f"attribute '{attr}': {exc}") from None
                cur = (cur or []) + [value]
                continue
            try:
                tokens = shlex.split(part)
            except ValueError as exc:
                raise el.error(f"attribute '{attr}': cannot split '{part}': {exc}") from None
            if not tokens:
                if cur is not None:
                    out.append("".join(cur))
                    cur = None
                continue
            if part[0].isspace() and cur is not None:
                out.append("".join(cur))
                cur = None
            first, *rest = tokens
            cur = (cur or []) + [first]
            if rest:
                out.append("".join(cur))
                out.extend(rest[:-1])
                cur = [rest[-1]]
            if part[-1].isspace():
                out.append("".join(cur))
                cur = None
        if cur is not None:
            out.append("".join(cur))
        return out

    def condition(self, el: Element) -> bool:
        if "if" in el.templates:
            return _truthy(el, "if", self.sub_req(el, "if"))
        if "unless" in el.templates:
            return not _truthy(el, "unless", self.sub_req(el, "unless"))
        return True

    # -- files
    def run_file(self, path: Path, root: Element) -> None:
        previous = self.file
        self.stack.append(path)
        self.file = path
        if "deprecated" in root.attrs and self.graph is not None:
            self.graph.messages.append(f"warning: {path} is deprecated: {root.attrs['deprecated']}")
        try:
            for child in root.children:
                self.execute(child)
        finally:
            self.stack.pop()
            self.file = previous

    def execute(self, el: Element) -> None:
        if not self.condition(el):
            return
        handler = getattr(self, "do_" + el.tag.replace("-", "_"))
        handler(el)

    # -- actions
    def do_arg(self, el: Element) -> None:
        name = self.sub_req(el, "name")
        if name not in self.scope.configs:
            default = self.sub(el, "default")
            if default is None:
                how = (f"pass {name}:=VALUE on the command line" if len(self.stack) == 1
                       else f"pass <arg name=\"{name}\" value=\"...\"/> in the <include>")
                desc = el.attrs.get("description")
                raise el.error(f"required launch argument '{name}' was not provided"
                               + (f" ({desc})" if desc else "") + f": {how}")
            self.scope.configs[name] = default
        value = self.scope.configs[name]
        choices = [c.attrs["value"] for c in el.children]
        if choices and value not in choices:
            raise el.error(f"argument '{name}' = '{value}' is not one of: " + ", ".join(choices))
        if len(self.stack) == 1 and self.graph is not None:
            self.graph.arguments[name] = (str(value), el.attrs.get("description", ""))

    def do_let(self, el: Element) -> None:
        self.scope.configs[self.sub_req(el, "name")] = self.sub_req(el, "value")

    def do_log(self, el: Element) -> None:
        assert self.graph is not None
        self.graph.messages.append(self.sub_req(el, "message"))

    def do_set_env(self, el: Element) -> None:
        self.scope.env[self.sub_req(el, "name")] = self.sub_req(el, "value")

    def do_unset_env(self, el: Element) -> None:
        self.scope.env.pop(self.sub_req(el, "name"), None)

    def do_append_env(self, el: Element) -> None:
        name, value = self.sub_req(el, "name"), self.sub_req(el, "value")
        prepend = _truthy(el, "prepend", self.sub(el, "prepend", "false") or "", yaml_words=True)
        sep = self.sub(el, "separator", os.pathsep)
        old = self.scope.env.get(name)
        if old:
            value = f"{value}{sep}{old}" if prepend else f"{old}{sep}{value}"
        self.scope.env[name] = value

    def do_push_ros_namespace(self, el: Element) -> None:
        ns = make_namespace_absolute(prefix_namespace(self.scope.namespace, self.sub_req(el, "namespace")))
        assert ns is not None
        _check_namespace(el, ns)
        self.scope.namespace = ns
        self.scope.configs["ros_namespace"] = ns  # launch_ros keeps it as a configuration too

    def do_set_parameter(self, el: Element) -> None:
        name = self.sub_req(el, "name")
        self.scope.global_params.append((name, self.typed(el, self.sub_req(el, "value"))))

    def do_set_use_sim_time(self, el: Element) -> None:
        value = _truthy(el, "value", self.sub_req(el, "value"), yaml_words=True)
        self.scope.global_params.append(("use_sim_time", value))

    def do_set_parameters_from_file(self, el: Element) -> None:
        if "node_name" in el.attrs:
            raise el.error("<set_parameters_from_file node_name=...> is not supported by katazuke "
                           "launch; put the parameters under that node's name in the file")
        self.scope.param_files.append(ParamFile(self.param_path(el, "filename")))

    def do_reset(self, el: Element) -> None:
        self.scope.configs = {self.sub_req(k, "name"): self.sub_req(k, "value") for k in el.children}

    def do_timer(self, el: Element) -> None:
        period = self.seconds(el, "period")
        assert period is not None
        saved = self.delay
        self.delay += period
        try:
            for child in el.children:
                self.execute(child)
        finally:
            self.delay = saved

    def do_ros_timer(self, el: Element) -> None:
        # ROS time runs as wall time unless a /clock is published; the launcher has no clock
        # subscription, so a ros_timer waits its period in wall time.
        self.do_timer(el)

    def do_shutdown(self, el: Element) -> None:
        assert self.graph is not None
        reason = self.sub(el, "reason", "shutdown action in the launch file") or ""
        if self.graph.shutdown is None or self.delay < self.graph.shutdown[0]:
            self.graph.shutdown = (self.delay, reason)

    def do_set_remap(self, el: Element) -> None:
        self.scope.remaps.append((self.sub_req(el, "from"), self.sub_req(el, "to")))

    def do_group(self, el: Element) -> None:
        scoped = _truthy(el, "scoped", self.sub(el, "scoped", "true") or "")
        forwarding = _truthy(el, "forwarding", self.sub(el, "forwarding", "true") or "")
        saved = self.scope.copy() if scoped else None
        if not forwarding:
            keep = {self.sub_req(k, "name"): self.sub_req(k, "value")
                    for k in el.children if k.tag == "keep"}
            self.scope.configs = keep
            self.scope.namespace = None
            self.scope.global_params = []
            self.scope.remaps = []
            self.scope.param_files = []
        try:
            for child in el.children:
                if child.tag != "keep":
                    self.execute(child)
        finally:
            if saved is not None:
                self.scope = saved

    def do_include(self, el: Element) -> None:
        raw = self.sub_req(el, "file")
        path = Path(os.path.abspath(raw))
        if not path.is_file():
            raise el.error(f"included launch file not found: {raw} (check the path; "
                           "$(dirname) is the directory of this file)")
        if not path.name.endswith((".xml", ".yaml", ".yml", ".py")):
            raise el.error(f"cannot include {path.name}: launch files are .xml, .yaml or .py")
        if len(self.stack) >= _MAX_INCLUDE_DEPTH or path in self.stack:
            raise el.error("include recursion: " + " -> ".join(str(p) for p in [*self.stack, path]))
        root = read_launch_file(path, self.scope.env)
        given = [self.sub_req(a, "name") for a in el.children]
        for decl in _unconditional_args(root):
            name = decl.attrs["name"]
            if "default" not in decl.attrs and name not in given:
                raise el.error(f"included file {path.name} needs argument '{name}' (declared at "
                               f"{decl.where}): add <arg name=\"{name}\" value=\"...\"/> to the <include>")
        for a in el.children:
            self.scope.configs[self.sub_req(a, "name")] = self.sub_req(a, "value")
        self.run_file(path, root)

    def typed(self, el: Element, text: str) -> Any:
        try:
            return typed_value(text)
        except ValueError as exc:
            raise el.error(str(exc)) from None

    def param_value(self, el: Element) -> Any:
        """A ``<param name>`` value as launch_ros reads it.

        Without ``type``, the raw text is read as YAML first (``'3'`` is the string 3,
        ``2`` the integer), then a string's substitutions are performed and, when it held
        any, the result is typed again; with ``value-sep`` the raw text is split first and
        each item is read that way (substitution results stay strings). ``type`` (``str``,
        ``int``, ``float``, ``bool``, ``list_of_*``, ``yaml``) fixes the type instead.
        """
        nested = [c for c in el.children]
        if "value" in el.attrs and nested:
            raise el.error("<param> cannot have both a 'value' and nested <param> elements")
        if nested:
            out: dict[str, Any] = {}
            for c in nested:
                out[self.sub_req(c, "name")] = self.param_value(c)
            return out
        if "value" not in el.attrs:
            raise el.error("<param name=...> needs a 'value' attribute or nested <param> elements")
        type_id = self.sub(el, "type", "yaml")
        if type_id not in _PARAM_TYPES:
            raise el.error(f"unknown parameter type '{type_id}'; use one of " + ", ".join(_PARAM_TYPES))
        kind, is_list = _PARAM_TYPES[type_id]
        if not el.raw:  # built by a frontend: its template is the value
            text = self.sub_req(el, "value")
            if kind is str:
                return text
            value = self.typed(el, text)
            return value if kind is None else self.coerce(el, value, kind, type_id)
        raw = el.attrs["value"]
        if "value-sep" not in el.attrs:
            if is_list:
                value = self.typed(el, self.sub_req(el, "value"))
                if not isinstance(value, list):
                    raise el.error(f"type '{type_id}' needs a list value, got '{raw}'")
                return [self.coerce(el, v, kind, type_id) for v in value]
            return self.param_item(el, raw, kind, type_id, in_list=False)
        items = [self.param_item(el, t, kind, type_id, in_list=True)
                 for t in (raw.split(el.attrs["value-sep"]) if raw else [])]
        try:
            return _uniform(items)
        except ValueError as exc:
            raise el.error(str(exc)) from None

    def param_item(self, el: Element, raw: str, kind: type | None, type_id: str, in_list: bool) -> Any:
        if kind is str:
            return self.eval_text(el, "value", raw)
        if kind is not None:
            return self.coerce(el, self.typed(el, self.eval_text(el, "value", raw)), kind, type_id)
        if raw == "":
            return ""
        try:
            loaded = yaml.safe_load(raw)
        except yaml.YAMLError:
            loaded = raw
        if isinstance(loaded, bool | int | float):
            return loaded
        if not isinstance(loaded, str):  # a list, or YAML no parameter can hold: typed() says so
            return self.typed(el, self.eval_text(el, "value", raw))
        text = loaded
        try:
            template = parse_template(text)
        except SubstitutionError as exc:
            raise el.error(f"attribute 'value': {exc}") from None
        value = self.eval_text(el, "value", text)
        if in_list or not any(isinstance(t, Sub) for t in template):
            return value
        return self.typed(el, value)

    def coerce(self, el: Element, value: Any, kind: type, type_id: str) -> Any:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, kind) and (kind is not int or not isinstance(value, bool)):
            return value
        raise el.error(f"parameter value {value!r} is not of type '{type_id}'")

    def param_path(self, el: Element, attr: str) -> Path:
        raw = self.sub_req(el, attr)
        path = Path(os.path.abspath(raw))
        if not path.is_file():
            raise el.error(f"parameter file not found: {raw} (check the path; $(dirname) is "
                           "the directory of this launch file)")
        return path

    def params(self, el: Element) -> list[ParamFile | ParamDict]:
        """The ``<param>`` children of a node, container or component, in order."""
        out: list[ParamFile | ParamDict] = []
        for p in el.children:
            if p.tag != "param":
                continue
            if "from" in p.attrs:
                if "name" in p.attrs or "value" in p.attrs or "type" in p.attrs or p.children:
                    raise p.error("<param from=...> cannot have 'name', 'value', 'type' or nested <param>")
                path = self.param_path(p, "from")
                text = None
                if _truthy(p, "allow_substs", self.sub(p, "allow_substs", "false") or "", yaml_words=True):
                    text = self.eval_text(p, "from", path.read_text(encoding="utf-8"))
                out.append(ParamFile(path, text))
            elif "name" in p.attrs:
                if "allow_substs" in p.attrs:
                    raise p.error("'allow_substs' applies to <param from=...> only")
                out.append(ParamDict({self.sub_req(p, "name"): self.param_value(p)}))
            else:
                raise p.error("<param> needs a 'name' (with 'value') or a 'from' attribute")
        return out

    def remaps(self, el: Element) -> list[tuple[str, str]]:
        return list(self.scope.remaps) + [
            (self.sub_req(r, "from"), self.sub_req(r, "to")) for r in el.children if r.tag == "remap"]

    def process_common(self, el: Element, spec: ProcessSpec, default_label: str) -> None:
        output = self.sub(el, "output", "log")
        if output not in ("screen", "log", "both"):
            raise el.error(f"output must be screen, log or both, got '{output}'")
        spec.output = output
        spec.respawn = _truthy(el, "respawn", self.sub(el, "respawn", "false") or "")
        delay_text = self.sub(el, "respawn_delay", "0") or "0"
        try:
            spec.respawn_delay = float(delay_text)
        except ValueError:
            raise el.error(f"respawn_delay must be a number of seconds, got '{delay_text}'") from None
        if spec.respawn_delay < 0:
            raise el.error(f"respawn_delay must be >= 0, got {spec.respawn_delay}")
        retries = self.sub(el, "respawn_max_retries", "-1") or "-1"
        try:
            spec.respawn_max_retries = int(retries)
        except ValueError:
            raise el.error(f"respawn_max_retries must be an integer, got '{retries}'") from None
        on_exit = self.sub(el, "on_exit")
        if on_exit is not None and on_exit != "shutdown":
            raise el.error(f"on_exit supports only 'shutdown', got '{on_exit}'")
        spec.on_exit = on_exit
        spec.shell = _truthy(el, "shell", self.sub(el, "shell", "false") or "")
        spec.cwd = self.sub(el, "cwd")
        if spec.cwd is not None and not Path(spec.cwd).is_dir():
            raise el.error(f"cwd '{spec.cwd}' is not a directory")
        prefix = self.sub(el, "launch-prefix")
        spec.prefix = shlex.split(prefix) if prefix else []
        spec.emulate_tty = _truthy(el, "emulate_tty", self.sub(el, "emulate_tty", "false") or "",
                                   yaml_words=True)
        spec.sigterm_timeout = self.seconds(el, "sigterm_timeout")
        spec.sigkill_timeout = self.seconds(el, "sigkill_timeout")
        spec.start_delay = self.delay
        env = dict(self.scope.env)
        for e in el.children:
            if e.tag == "env":
                env[self.sub_req(e, "name")] = self.sub_req(e, "value")
        for k, v in SAFE_ENV_DEFAULTS.items():
            env.setdefault(k, v)
        env.update(self.child_env)
        spec.env = env
        spec.env_changes = {k: v for k, v in env.items() if self.base_env.get(k) != v}
        spec.env_changes.update({k: None for k in self.base_env if k not in env})
        label = self.sub(el, "name")
        if el.tag != "executable":
            label = self.sub(el, "exec_name") or label
        label = label or default_label
        unique, n = label, 1
        while unique in self.labels:
            n += 1
            unique = f"{label}-{n}"
        self.labels.add(unique)
        spec.label = unique
        spec.source = el.where

    def node_executable(self, el: Element, pkg: str | None, exe_name: str, required: bool = True) -> str:
        """``lib/PKG/EXEC`` of a node (``EXEC`` on PATH without ``pkg``); ``""`` when it is
        missing and not ``required``."""
        if pkg is None:
            if not required and shutil.which(exe_name, path=self.scope.env.get("PATH", "")) is None:
                return ""
            return self.which(el, exe_name)
        try:
            prefix = find_package_prefix(pkg, self.scope.env)
        except SubstitutionError as exc:
            if not required:
                return ""
            raise el.error(str(exc)) from None
        libdir = prefix / "lib" / pkg
        exe = libdir / exe_name
        if not (exe.is_file() and os.access(exe, os.X_OK)):
            if not required:
                return ""
            have = sorted(p.name for p in libdir.iterdir() if p.is_file()) if libdir.is_dir() else []
            raise el.error(f"executable '{exe_name}' not found in package '{pkg}' (looked for {exe}; "
                           f"available: {', '.join(have) or 'none'})")
        return str(exe)

    def node_name_and_namespace(self, el: Element) -> tuple[str | None, str | None]:
        name = self.sub(el, "name")
        if name is not None:
            _check_node_name(el, name)
        ns = make_namespace_absolute(prefix_namespace(self.scope.namespace, self.sub(el, "namespace")))
        if ns is not None:
            _check_namespace(el, ns)
        return name, ns

    def node_spec(self, el: Element, kind: str, exe_path: str, pkg: str | None, exe_name: str) -> ProcessSpec:
        spec = ProcessSpec(label="", kind=kind, executable=exe_path, package=pkg)  # type: ignore[arg-type]
        spec.node_name, spec.namespace = self.node_name_and_namespace(el)
        spec.args = self.cmdline(el, "args")
        spec.ros_args = self.cmdline(el, "ros_args")
        spec.global_params = list(self.scope.global_params)
        spec.global_param_files = list(self.scope.param_files)
        spec.params = self.params(el)
        spec.remaps = self.remaps(el)
        self.process_common(el, spec, Path(exe_name).name)
        return spec

    def do_node(self, el: Element) -> None:
        assert self.graph is not None
        exe_name, pkg = self.sub_req(el, "exec"), self.sub(el, "pkg")
        exe_path = self.node_executable(el, pkg, exe_name)
        self.graph.processes.append(self.node_spec(el, "node", exe_path, pkg, exe_name))

    def do_lifecycle_node(self, el: Element) -> None:
        """A lifecycle node runs as a node. ``autostart`` (configure and activate once it is
        up) needs the lifecycle services, which the launcher does not call: it is an error
        so that a node left unconfigured is never a surprise."""
        if _truthy(el, "autostart", self.sub(el, "autostart", "false") or "", yaml_words=True):
            raise el.error("<lifecycle_node autostart=\"true\"> is not supported by katazuke launch "
                           "(it does not call lifecycle services); drop autostart and use a lifecycle "
                           "manager node, or run the file with ros2 launch")
        self.do_node(el)

    def do_unset(self, el: Element) -> None:
        self.scope.configs.pop(self.sub_req(el, "name"), None)

    def do_reset_env(self, el: Element) -> None:
        self.scope.env = dict(self.base_env)

    def do_set_ros_log_dir(self, el: Element) -> None:
        current = self.scope.env.get("ROS_LOG_DIR") or str(ros_log_dir(self.scope.env))
        self.scope.env["ROS_LOG_DIR"] = os.path.join(current, self.sub_req(el, "new_log_dir"))

    def do_node_container(self, el: Element) -> None:
        """A component container: a node whose ``<composable_node>`` children it loads.
        The container's own executable may be absent (no rclcpp_components in a pip-only
        install): ``katazuke launch`` runs each component as its own process."""
        assert self.graph is not None
        exe_name, pkg = self.sub_req(el, "exec"), self.sub(el, "pkg")
        exe_path = self.node_executable(el, pkg, exe_name, required=False)
        spec = self.node_spec(el, "container", exe_path, pkg, exe_name)
        spec.components = [self.component(c) for c in el.children
                           if c.tag == "composable_node" and self.condition(c)]
        self.graph.processes.append(spec)

    def component(self, el: Element) -> ComponentSpec:
        name, ns = self.node_name_and_namespace(el)
        assert name is not None  # required by the spec
        extra: dict[str, Any] = {}
        for e in el.children:
            if e.tag == "extra_arg":
                extra[self.sub_req(e, "name")] = self.typed(e, self.sub_req(e, "value"))
        return ComponentSpec(package=self.sub_req(el, "pkg"), plugin=self.sub_req(el, "plugin"),
                             node_name=name, namespace=ns, global_params=list(self.scope.global_params),
                             params=[*self.scope.param_files, *self.params(el)], remaps=self.remaps(el),
                             extra_args=extra, source=el.where)

    def do_load_composable_node(self, el: Element) -> None:
        assert self.graph is not None
        target = self.sub_req(el, "target")
        wanted = target if target.startswith("/") else prefix_namespace(self.scope.namespace or "/", target)
        containers = [p for p in self.graph.processes if p.kind == "container"]
        found = [c for c in containers if c.fully_qualified_name == wanted
                 or (not target.startswith("/") and "/" not in target and c.node_name == target)]
        if not found:
            have = ", ".join(str(c.fully_qualified_name) for c in containers) or "none"
            raise el.error(f"<load_composable_node target=\"{target}\">: no <node_container> of that "
                           f"name was started before it (containers: {have})")
        found[0].components.extend(self.component(c) for c in el.children
                                   if c.tag == "composable_node" and self.condition(c))

    def which(self, el: Element, exe_name: str) -> str:
        if "/" in exe_name:
            found = exe_name if os.access(exe_name, os.X_OK) and Path(exe_name).is_file() else None
        else:
            found = shutil.which(exe_name, path=self.scope.env.get("PATH", ""))
        if found is None:
            raise el.error(f"executable '{exe_name}' not found (not an executable file and not on PATH)")
        return os.path.abspath(found) if "/" in exe_name else found

    def do_executable(self, el: Element) -> None:
        assert self.graph is not None
        words = self.cmdline(el, "cmd")
        if not words:
            raise el.error("<executable cmd=...> is empty")
        shell = _truthy(el, "shell", self.sub(el, "shell", "false") or "")
        exe = words[0] if shell else self.which(el, words[0])
        spec = ProcessSpec(label="", kind="executable", executable=exe, args=words[1:])
        self.process_common(el, spec, Path(words[0]).name)
        self.graph.processes.append(spec)


def _uniform(items: list[Any]) -> list[Any]:
    if not items:
        raise ValueError("value-sep gave an empty list; ROS cannot infer its type")
    kinds = {type(v) for v in items}
    if kinds <= {int, float}:
        return [float(v) for v in items] if float in kinds else items
    if len(kinds) != 1:
        raise ValueError(f"list {items} mixes types; ROS parameters need one type")
    return items


def _unconditional_args(root: Element) -> Iterator[Element]:
    """``<arg>`` declarations not below an if/unless (what ROS checks at include time)."""
    for el in root.children:
        if _COND & el.attrs.keys():
            continue
        if el.tag == "arg":
            yield el
        elif el.tag == "group":
            yield from _unconditional_args(el)


def load_launch(path: str | os.PathLike, launch_args: Mapping[str, str] | None = None,
                env: Mapping[str, str] | None = None,
                child_env: Mapping[str, str] | None = None,
                log_dir: str | os.PathLike | None = None) -> LaunchGraph:
    """Resolve a launch XML file into a :class:`LaunchGraph` (starts nothing).

    Args:
        path: the launch file.
        launch_args: command-line arguments (``name:=value``), set before the file runs.
        env: the launch environment (default ``os.environ``); ``$(env)``,
            ``AMENT_PREFIX_PATH`` and ``PATH`` lookups and the children's environment
            start from it.
        child_env: variables forced on every process (e.g. ``ROS_DOMAIN_ID``).
        log_dir: the launch's log directory (``$(log_dir)``; default: the ROS log
            directory of ``env``, ``$ROS_LOG_DIR`` or ``$ROS_HOME/log`` or ``~/.ros/log``).

    Raises:
        KatazukeError: ``FILE:LINE: ...`` for every problem in the files.
    """
    file = Path(os.path.abspath(path))
    if not file.is_file():
        raise KatazukeError(f"launch file not found: {path}")
    env = os.environ if env is None else env
    loader = _Loader(env, launch_args or {}, child_env or {},
                     Path(log_dir) if log_dir is not None else ros_log_dir(env))
    root = read_launch_file(file, env)
    graph = LaunchGraph(file=file)
    loader.graph = graph
    for decl in _unconditional_args(root):
        name = decl.attrs["name"]
        if "default" not in decl.attrs and name not in (launch_args or {}):
            desc = decl.attrs.get("description")
            raise decl.error(f"required launch argument '{name}' was not provided"
                             + (f" ({desc})" if desc else "") + f": pass {name}:=VALUE")
    loader.run_file(file, root)
    return graph


def ros_log_dir(env: Mapping[str, str]) -> Path:
    """The ROS log directory: ``$ROS_LOG_DIR``, else ``$ROS_HOME/log``, else ``~/.ros/log``."""
    if env.get("ROS_LOG_DIR"):
        return Path(env["ROS_LOG_DIR"])
    home = Path(env.get("ROS_HOME") or Path(env.get("HOME") or Path.home()) / ".ros")
    return home / "log"


def parse_launch_arguments(words: list[str]) -> dict[str, str]:
    """``["a:=1", "b:=x"]`` -> ``{"a": "1", "b": "x"}``.

    Raises:
        KatazukeError: a word without ``:=`` or with an empty name.
    """
    out: dict[str, str] = {}
    for w in words:
        name, sep, value = w.partition(":=")
        if not sep or not name:
            raise KatazukeError(f"launch argument '{w}' must look like name:=value")
        out[name] = value
    return out


def resolve_launch_file(target: list[str], env: Mapping[str, str] | None = None) -> Path:
    """``[FILE]`` or ``[PKG, FILE]`` (as ``ros2 launch``) -> the launch file path.

    With a package, ``share/PKG/launch/FILE`` is tried first, then any file of that
    name below ``share/PKG``.

    Raises:
        KatazukeError: the file or package cannot be found.
    """
    env = os.environ if env is None else env
    if len(target) == 1:
        p = Path(target[0])
        if not p.is_file():
            raise KatazukeError(f"launch file not found: {p} (give a path, or PKG FILE)")
        return p.resolve()
    if len(target) != 2:
        raise KatazukeError("expected FILE or PKG FILE")
    pkg, name = target
    try:
        share = find_package_prefix(pkg, env) / "share" / pkg
    except SubstitutionError as exc:
        raise KatazukeError(str(exc)) from None
    direct = share / "launch" / name
    if direct.is_file():
        return direct
    found = sorted(p for p in share.rglob(name) if p.is_file()) if share.is_dir() else []
    if not found:
        raise KatazukeError(f"launch file '{name}' not found in {share} (is it installed? "
                            "re-run bash scripts/bootstrap.sh after adding files to launch/)")
    return found[0]
