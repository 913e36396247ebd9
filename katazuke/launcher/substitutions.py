r"""ROS 2 launch-frontend substitutions: ``$(name arg ...)`` parsing and evaluation.

The grammar follows ``launch.frontend`` (the one ``ros2 launch`` uses for XML):

- text outside ``$(`` is literal;
- ``$(NAME ARG ARG ...)`` is a substitution; arguments are separated by whitespace;
- an argument is a concatenation of unquoted text, ``'single'`` or ``"double"``
  quoted text, and nested substitutions (also inside quotes, so
  ``$(eval '$(var n) + 1')`` works).

Escapes (as upstream's ``replace_escaped_characters``): a backslash makes the next
character literal everywhere, so ``\'`` is a quote, ``\$(`` is not a substitution and
``\(``/``\)``/``\ `` stay inside an argument; a backslash before any other character is
dropped (``\a`` -> ``a``).

Supported substitutions (the ``@expose_substitution`` names of launch and launch_ros):
``var``, ``env`` (error when unset without default), ``find-pkg-share``,
``find-pkg-prefix``, ``find-exec``, ``exec-in-pkg``, ``dirname``, ``filename``,
``file-content``, ``command``, ``param`` (a ``<set_parameter>`` value in scope),
``anon``, ``log_dir``, the boolean ``not``/``and``/``or``/``any``/``all``,
``equals``/``not-equals``/``if`` and ``eval`` (see :func:`safe_eval`). ``$(optenv)`` is
ROS 1 only and is rejected with the ROS 2 spelling, ``$(env NAME default)``.

Parsing happens once per attribute when a file is loaded, so syntax errors and
unknown substitution names are reported even inside branches that a condition
switches off, as ``ros2 launch`` does.
"""
from __future__ import annotations

import ast
import importlib
import math
import operator
import os
import secrets
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Union

__all__ = [
    "Sub",
    "Template",
    "SubstitutionError",
    "SubstitutionContext",
    "parse_template",
    "evaluate",
    "find_package_prefix",
    "safe_eval",
    "SUBSTITUTIONS",
]


class SubstitutionError(Exception):
    """A substitution cannot be parsed or evaluated (message says what to fix).

    The XML loader turns it into a :class:`~katazuke.errors.KatazukeError` prefixed
    with ``FILE:LINE:``.
    """


@dataclass(frozen=True)
class Sub:
    """One ``$(name args...)`` occurrence.

    Attributes:
        name: substitution name, e.g. ``"var"``.
        args: each argument is itself a :data:`Template`.
    """

    name: str
    args: tuple["Template", ...] = ()


#: A parsed attribute value: literal strings and substitutions, concatenated.
Template = tuple[Union[str, Sub], ...]


@dataclass
class SubstitutionContext:
    """What substitutions can see.

    Attributes:
        configs: launch configurations (``$(var ...)``), name -> value.
        env: environment of the launch (``$(env ...)``, ``AMENT_PREFIX_PATH``, ``PATH``).
        current_file: the launch file being read (``$(dirname)``, ``$(filename)``).
        params: ``<set_parameter>`` values in scope (``$(param)``), name -> typed value.
        log_dir: the launch's log directory (``$(log_dir)``).
        anon_names: ``$(anon NAME)`` results so far; one launch gives one name per NAME.
    """

    configs: Mapping[str, object]
    env: Mapping[str, str]
    current_file: Path | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    log_dir: Path | None = None
    anon_names: dict[str, str] = field(default_factory=dict)


# name -> (min args, max args)
_MANY = 1 << 16
SUBSTITUTIONS: dict[str, tuple[int, int]] = {
    "var": (1, 2),
    "env": (1, 2),
    "find-pkg-share": (1, 1),
    "find-pkg-prefix": (1, 1),
    "find-exec": (1, 1),
    "exec-in-pkg": (2, 2),
    "dirname": (0, 0),
    "filename": (0, 0),
    "file-content": (1, 1),
    "command": (1, 2),
    "param": (1, 2),
    "anon": (1, 1),
    "log_dir": (0, 0),
    "eval": (1, 2),
    "not": (1, 1),
    "and": (2, 2),
    "or": (2, 2),
    "any": (1, _MANY),
    "all": (1, _MANY),
    "equals": (2, 2),
    "not-equals": (2, 2),
    "if": (1, 3),
}
#: ROS 1 substitutions that ``ros2 launch`` rejects, with the ROS 2 spelling to use.
_ROS1_ONLY = {
    "optenv": "$(env NAME DEFAULT) (ROS 2's env takes a default; $(env NAME '') for an empty one)",
    "arg": "$(var NAME)",
    "find": "$(find-pkg-share PKG)",
}

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, what: str) -> SubstitutionError:
        return SubstitutionError(f"bad substitution in {self.text!r} at column {self.pos + 1}: {what}")

    def template(self) -> Template:
        parts: list[str | Sub] = []
        buf: list[str] = []
        while self.pos < len(self.text):
            if self.text.startswith("$(", self.pos):
                if buf:
                    parts.append("".join(buf))
                    buf = []
                parts.append(self.substitution())
            else:
                buf.append(self.char())
        if buf:
            parts.append("".join(buf))
        return tuple(parts)

    def char(self) -> str:
        """The next literal character; a backslash makes the one after it literal."""
        c = self.text[self.pos]
        if c == "\\" and self.pos + 1 < len(self.text):
            self.pos += 2
            return self.text[self.pos - 1]
        self.pos += 1
        return c

    def substitution(self) -> Sub:
        start = self.pos
        self.pos += 2  # "$("
        name_start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _NAME_CHARS:
            self.pos += 1
        name = self.text[name_start:self.pos]
        if not name:
            raise self.error("expected a substitution name after '$('")
        if name in _ROS1_ONLY:
            raise self.error(f"'$({name} ...)' is ROS 1 only (ros2 launch rejects it); "
                             f"use {_ROS1_ONLY[name]}")
        if name not in SUBSTITUTIONS:
            raise self.error(f"unknown substitution '$({name} ...)'; supported: "
                             + ", ".join(sorted(SUBSTITUTIONS)))
        args: list[Template] = []
        while True:
            had_space = self._skip_space()
            if self.pos >= len(self.text):
                self.pos = start
                raise self.error(f"'$({name}' is not closed with ')'")
            if self.text[self.pos] == ")":
                self.pos += 1
                break
            if not had_space:
                raise self.error(f"expected whitespace or ')' after '$({name}'")
            args.append(self.argument())
        lo, hi = SUBSTITUTIONS[name]
        if not lo <= len(args) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            raise SubstitutionError(
                f"bad substitution in {self.text!r}: '$({name})' takes {want} argument(s), "
                f"got {len(args)}")
        return Sub(name, tuple(args))

    def _skip_space(self) -> bool:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        return self.pos > start

    def argument(self) -> Template:
        parts: list[str | Sub] = []
        buf: list[str] = []

        def flush() -> None:
            if buf:
                parts.append("".join(buf))
                buf.clear()

        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c.isspace() or c == ")":
                break
            if self.text.startswith("$(", self.pos):
                flush()
                parts.append(self.substitution())
            elif c in "'\"":
                flush()
                parts.extend(self.quoted(c))
            else:
                buf.append(self.char())
        flush()
        return tuple(parts)

    def quoted(self, quote: str) -> list[str | Sub]:
        start = self.pos
        self.pos += 1
        parts: list[str | Sub] = []
        buf: list[str] = []
        while True:
            if self.pos >= len(self.text):
                self.pos = start
                raise self.error(f"unterminated {quote} quote")
            c = self.text[self.pos]
            if c == quote:
                self.pos += 1
                break
            elif self.text.startswith("$(", self.pos):
                if buf:
                    parts.append("".join(buf))
                    buf = []
                parts.append(self.substitution())
            else:
                buf.append(self.char())
        if buf:
            parts.append("".join(buf))
        return parts


def parse_template(text: str) -> Template:
    """Parse an attribute value into literal text and substitutions.

    Args:
        text: the raw attribute value.

    Returns:
        A tuple of ``str`` and :class:`Sub` items.

    Raises:
        SubstitutionError: unbalanced ``$(``, unknown substitution name, wrong
            argument count, unterminated quote.
    """
    return _Parser(text).template()


def find_package_prefix(package: str, env: Mapping[str, str]) -> Path:
    """The install prefix holding ``package`` in the ament index of ``AMENT_PREFIX_PATH``.

    Raises:
        SubstitutionError: the package is not in any prefix.
    """
    prefixes = [p for p in env.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    for prefix in prefixes:
        marker = Path(prefix) / "share" / "ament_index" / "resource_index" / "packages" / package
        if marker.is_file():
            return Path(prefix)
    raise SubstitutionError(
        f"package '{package}' not found in AMENT_PREFIX_PATH ({os.pathsep.join(prefixes) or 'empty'}); "
        "build it (bash scripts/bootstrap.sh) or fix the package name")


def evaluate(template: Template, ctx: SubstitutionContext) -> str:
    """Perform every substitution of ``template`` and concatenate the result.

    Raises:
        SubstitutionError: an undefined launch configuration, an unset environment
            variable without default, an unknown package, an invalid expression.
    """
    out: list[str] = []
    for part in template:
        if isinstance(part, str):
            out.append(part)
        elif part.name == "if":
            out.append(_if(ctx, part))
        else:
            out.append(_HANDLERS[part.name](ctx, [evaluate(a, ctx) for a in part.args]))
    return "".join(out)


def _var(ctx: SubstitutionContext, args: list[str]) -> str:
    name = args[0]
    if name in ctx.configs:
        return str(ctx.configs[name])
    if len(args) == 2:
        return args[1]
    raise SubstitutionError(
        f"launch configuration '{name}' does not exist: declare it with "
        f"<arg name=\"{name}\" default=\"...\"/> or <let>, or pass {name}:=VALUE")


def _env(ctx: SubstitutionContext, args: list[str]) -> str:
    if args[0] in ctx.env:
        return ctx.env[args[0]]
    if len(args) == 2:
        return args[1]
    raise SubstitutionError(
        f"environment variable '{args[0]}' is not set: set it or give a default, "
        f"$(env {args[0]} DEFAULT)")


def _find_pkg_share(ctx: SubstitutionContext, args: list[str]) -> str:
    return str(find_package_prefix(args[0], ctx.env) / "share" / args[0])


def _find_pkg_prefix(ctx: SubstitutionContext, args: list[str]) -> str:
    return str(find_package_prefix(args[0], ctx.env))


def _find_exec(ctx: SubstitutionContext, args: list[str]) -> str:
    found = shutil.which(args[0], path=ctx.env.get("PATH", ""))
    if found is None:
        raise SubstitutionError(f"executable '{args[0]}' not found on PATH")
    return found


def _current(ctx: SubstitutionContext) -> Path:
    if ctx.current_file is None:
        raise SubstitutionError("$(dirname)/$(filename) used outside a launch file")
    return ctx.current_file


def _dirname(ctx: SubstitutionContext, args: list[str]) -> str:
    return str(_current(ctx).parent)


def _filename(ctx: SubstitutionContext, args: list[str]) -> str:
    return str(_current(ctx))


def _exec_in_pkg(ctx: SubstitutionContext, args: list[str]) -> str:
    exe_name, pkg = args
    exe = find_package_prefix(pkg, ctx.env) / "lib" / pkg / exe_name
    if not (exe.is_file() and os.access(exe, os.X_OK)):
        raise SubstitutionError(f"$(exec-in-pkg {exe_name} {pkg}): no executable {exe} "
                                "(the arguments are EXECUTABLE then PACKAGE)")
    return str(exe)


def _file_content(ctx: SubstitutionContext, args: list[str]) -> str:
    try:
        return Path(args[0]).read_text(encoding="utf-8")
    except OSError as exc:
        raise SubstitutionError(f"$(file-content {args[0]}): cannot read it: {exc.strerror}") from None


def _command(ctx: SubstitutionContext, args: list[str]) -> str:
    on_stderr = args[1] if len(args) == 2 else "fail"
    if on_stderr not in ("fail", "ignore", "warn", "capture"):
        raise SubstitutionError(f"$(command): on_stderr must be fail, ignore, warn or capture, "
                                f"got '{on_stderr}'")
    try:
        words = shlex.split(args[0])
    except ValueError as exc:
        raise SubstitutionError(f"$(command {args[0]!r}): cannot split it: {exc}") from None
    if not words:
        raise SubstitutionError("$(command) needs a command")
    try:
        done = subprocess.run(words, capture_output=True, text=True, env=dict(ctx.env),
                              cwd=str(ctx.current_file.parent) if ctx.current_file else None,
                              timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SubstitutionError(f"$(command {args[0]!r}) could not run: {exc}") from None
    if done.returncode != 0:
        raise SubstitutionError(f"$(command {args[0]!r}) exited with {done.returncode}: "
                                f"{done.stderr.strip()[-500:]}")
    if done.stderr and on_stderr == "fail":
        raise SubstitutionError(f"$(command {args[0]!r}) wrote to stderr (pass 'warn', 'ignore' or "
                                f"'capture' as second argument to allow it): {done.stderr.strip()[-500:]}")
    return done.stdout + (done.stderr if on_stderr == "capture" else "")


def _param(ctx: SubstitutionContext, args: list[str]) -> str:
    if args[0] in ctx.params:
        return str(ctx.params[args[0]])
    if len(args) == 2:
        return args[1]
    raise SubstitutionError(f"parameter '{args[0]}' is not set by a <set_parameter> in scope; "
                            f"give a default, $(param {args[0]} DEFAULT)")


def _anon(ctx: SubstitutionContext, args: list[str]) -> str:
    name = args[0]
    if name not in ctx.anon_names:
        ctx.anon_names[name] = f"{name}_{os.getpid()}_{secrets.randbelow(1 << 48)}"
    return ctx.anon_names[name]


def _log_dir(ctx: SubstitutionContext, args: list[str]) -> str:
    if ctx.log_dir is None:
        raise SubstitutionError("$(log_dir): the launch has no log directory")
    return str(ctx.log_dir)


_TRUE = frozenset({"true", "1", "on"})
_FALSE = frozenset({"false", "0", "off"})


def as_bool(text: str, what: str) -> bool:
    """A boolean from its text (``true/false``, ``1/0``, ``on/off``, any case).

    Raises:
        SubstitutionError: any other text.
    """
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise SubstitutionError(f"{what}: '{text}' is not a boolean (true/false, 1/0)")


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


def _not(ctx: SubstitutionContext, args: list[str]) -> str:
    return _bool_text(not as_bool(args[0], "$(not)"))


def _and(ctx: SubstitutionContext, args: list[str]) -> str:
    return _bool_text(as_bool(args[0], "$(and)") and as_bool(args[1], "$(and)"))


def _or(ctx: SubstitutionContext, args: list[str]) -> str:
    return _bool_text(as_bool(args[0], "$(or)") or as_bool(args[1], "$(or)"))


def _any(ctx: SubstitutionContext, args: list[str]) -> str:
    return _bool_text(any([as_bool(a, "$(any)") for a in args]))


def _all(ctx: SubstitutionContext, args: list[str]) -> str:
    return _bool_text(all([as_bool(a, "$(all)") for a in args]))


def _comparable(text: str) -> object:
    """``equals`` compares booleans as booleans and numbers as numbers, else the text."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return float(text)
    except ValueError:
        return text


def _equals(ctx: SubstitutionContext, args: list[str]) -> str:
    return _bool_text(_comparable(args[0]) == _comparable(args[1]))


def _not_equals(ctx: SubstitutionContext, args: list[str]) -> str:
    return _bool_text(_comparable(args[0]) != _comparable(args[1]))


def _eval(ctx: SubstitutionContext, args: list[str]) -> str:
    modules = args[1].replace(",", " ").split() if len(args) == 2 else []
    value = safe_eval(args[0], modules)
    try:
        return str(value)
    except ValueError as exc:  # an int too long to print
        raise SubstitutionError(f"$(eval {args[0]!r}): the result cannot be printed: {exc}") from None


_HANDLERS: dict[str, Callable[[SubstitutionContext, list[str]], str]] = {
    "var": _var,
    "env": _env,
    "find-pkg-share": _find_pkg_share,
    "find-pkg-prefix": _find_pkg_prefix,
    "find-exec": _find_exec,
    "exec-in-pkg": _exec_in_pkg,
    "dirname": _dirname,
    "filename": _filename,
    "file-content": _file_content,
    "command": _command,
    "param": _param,
    "anon": _anon,
    "log_dir": _log_dir,
    "eval": _eval,
    "not": _not,
    "and": _and,
    "or": _or,
    "any": _any,
    "all": _all,
    "equals": _equals,
    "not-equals": _not_equals,
}


def _if(ctx: SubstitutionContext, sub: Sub) -> str:
    """``$(if COND [THEN] [ELSE])``: only the chosen branch is evaluated."""
    chosen = evaluate(sub.args[0], ctx)
    branch = 1 if as_bool(chosen, "$(if)") else 2
    return evaluate(sub.args[branch], ctx) if len(sub.args) > branch else ""


_BINOPS: dict[type, Callable] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNOPS: dict[type, Callable] = {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos}
_CMPOPS: dict[type, Callable] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_MATH = {k: v for k, v in vars(math).items() if not k.startswith("_")}
#: Builtins a launch expression may call (upstream evaluates with Python's builtins).
_BUILTINS: dict[str, Any] = {f.__name__: f for f in (
    len, str, int, float, bool, abs, min, max, round, sum, any, all, sorted, list, tuple, dict,
    set, repr, reversed, enumerate, zip, isinstance)}
_BUILTINS.update({"True": True, "False": False, "None": None})
#: Methods never reachable from an expression (they walk attributes by name).
_BLOCKED_ATTRS = frozenset({"format", "format_map", "mro"})
_MAX_POW = 10_000
_MAX_LEN = 100_000


def _namespace(modules: list[str]) -> dict[str, Any]:
    """What an expression can name: math's contents, the ``math`` module, the named
    ``modules`` (the two-argument ``$(eval EXPR MODULES)``) and a set of builtins."""
    names: dict[str, Any] = dict(_BUILTINS)
    names.update(_MATH)
    names["math"] = math
    for name in modules:
        try:
            names[name] = importlib.import_module(name)
        except ImportError as exc:
            raise SubstitutionError(f"$(eval): cannot import module '{name}': {exc}") from None
    return names


def safe_eval(expr: str, modules: list[str] | None = None) -> object:
    """Evaluate a ``$(eval)`` expression in the namespace upstream's ``PythonExpression`` gives it.

    Allowed: literals (numbers, strings, True/False/None, tuples, lists, dicts, sets),
    arithmetic (exponent at most 10000, repeated strings/lists at most 100000 long),
    comparisons, ``and/or/not``, ``x if c else y``, indexing and slicing, the functions and
    constants of :mod:`math` (bare, ``ceil(x)``, or as ``math.ceil(x)``), the modules named
    in ``modules``, calls of ``len``/``str``/``int``/``float``/``min``/... and of public
    methods (``'A'.lower()``, ``s.split(',')[0]``). Names starting with ``_`` and anything
    else (lambdas, comprehensions, assignments) are refused: a launch expression computes
    a value, it does not run code.

    Raises:
        SubstitutionError: a syntax error or anything outside that subset.
    """
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise SubstitutionError(f"$(eval {expr!r}): not a Python expression ({exc.msg})") from None
    names = _namespace(modules or [])

    def bounded(value: object) -> object:
        if isinstance(value, (str, list, tuple)) and len(value) > _MAX_LEN:
            raise SubstitutionError(f"$(eval {expr!r}): result longer than {_MAX_LEN}")
        return value

    def ev(node: ast.AST) -> object:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
            return node.value
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            items = [ev(e) for e in node.elts]
            return {ast.Tuple: tuple, ast.List: list, ast.Set: set}[type(node)](items)
        if isinstance(node, ast.Dict) and all(k is not None for k in node.keys):
            return {ev(k): ev(v) for k, v in zip(node.keys, node.values)}
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)) and abs(right) > _MAX_POW:
                raise SubstitutionError(f"$(eval {expr!r}): exponent too large")
            if isinstance(node.op, ast.Mult):
                seq, n = (left, right) if isinstance(left, (str, list, tuple)) else (right, left)
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > _MAX_LEN:
                    raise SubstitutionError(f"$(eval {expr!r}): repeated sequence longer than {_MAX_LEN}")
            return bounded(_BINOPS[type(node.op)](left, right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNOPS:
            return _UNOPS[type(node.op)](ev(node.operand))
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                result: object = True
                for v in node.values:
                    result = ev(v)
                    if not result:
                        return result
                return result
            result = False
            for v in node.values:
                result = ev(v)
                if result:
                    return result
            return result
        if isinstance(node, ast.Compare) and all(type(o) in _CMPOPS for o in node.ops):
            left = ev(node.left)
            for op, comp in zip(node.ops, node.comparators):
                right = ev(comp)
                if not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return ev(node.body) if ev(node.test) else ev(node.orelse)
        if isinstance(node, ast.Name) and node.id in names:
            return names[node.id]
        if isinstance(node, ast.Attribute) and not node.attr.startswith("_") \
                and node.attr not in _BLOCKED_ATTRS:
            return getattr(ev(node.value), node.attr)
        if isinstance(node, ast.Subscript):
            return ev(node.value)[ev(node.slice)]
        if isinstance(node, ast.Slice):
            return slice(*(None if x is None else ev(x) for x in (node.lower, node.upper, node.step)))
        if isinstance(node, ast.Call) and not any(isinstance(a, ast.Starred) for a in node.args) \
                and all(k.arg is not None for k in node.keywords):
            func = ev(node.func)
            if not callable(func):
                raise SubstitutionError(f"$(eval {expr!r}): {func!r} is not callable")
            return bounded(func(*[ev(a) for a in node.args], **{k.arg: ev(k.value) for k in node.keywords}))
        what = type(node).__name__
        if isinstance(node, ast.Name):
            what = (f"name '{node.id}' (defined: math names, the modules given as second argument "
                    "and len/str/int/...; use True/False, not true/false)")
        elif isinstance(node, ast.Attribute):
            what = f"attribute '{node.attr}'"
        raise SubstitutionError(f"$(eval {expr!r}): {what} is not allowed in a launch expression")

    try:
        return ev(tree)
    except SubstitutionError:
        raise
    except RecursionError:
        raise SubstitutionError(f"$(eval {expr!r}): expression nested too deeply") from None
    except Exception as exc:  # whatever a called function raises (OSError, ...)
        raise SubstitutionError(f"$(eval {expr!r}) failed: {type(exc).__name__}: {exc}") from None
