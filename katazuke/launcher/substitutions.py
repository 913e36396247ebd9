"""ROS 2 launch-frontend substitutions: ``$(name arg ...)`` parsing and evaluation.

The grammar follows ``launch.frontend`` (the one ``ros2 launch`` uses for XML):

- text outside ``$(`` is literal;
- ``$(NAME ARG ARG ...)`` is a substitution; arguments are separated by whitespace;
- an argument is a concatenation of unquoted text, ``'single'`` or ``"double"``
  quoted text, and nested substitutions (also inside quotes, so
  ``$(eval '$(var n) + 1')`` works).

Supported substitutions: ``var`` (``$(var name [default])``), ``env``
(``$(env NAME [default])``, error when unset without default), ``optenv``,
``find-pkg-share``, ``find-pkg-prefix``, ``find-exec``, ``dirname``, ``filename`` and
``eval`` (a safe subset of Python expressions: literals, arithmetic, comparisons,
boolean logic, conditional expressions and the functions/constants of :mod:`math`,
which is what ``PythonExpression`` exposes; nothing else can be named or called).

Parsing happens once per attribute when a file is loaded, so syntax errors and
unknown substitution names are reported even inside branches that a condition
switches off, as ``ros2 launch`` does.
"""
from __future__ import annotations

import ast
import math
import operator
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Union

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
    """

    configs: Mapping[str, object]
    env: Mapping[str, str]
    current_file: Path | None = None


# name -> (min args, max args)
SUBSTITUTIONS: dict[str, tuple[int, int]] = {
    "var": (1, 2),
    "env": (1, 2),
    "optenv": (1, 2),
    "find-pkg-share": (1, 1),
    "find-pkg-prefix": (1, 1),
    "find-exec": (1, 1),
    "dirname": (0, 0),
    "filename": (0, 0),
    "eval": (1, 1),
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
                buf.append(self.text[self.pos])
                self.pos += 1
        if buf:
            parts.append("".join(buf))
        return tuple(parts)

    def substitution(self) -> Sub:
        start = self.pos
        self.pos += 2  # "$("
        name_start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _NAME_CHARS:
            self.pos += 1
        name = self.text[name_start:self.pos]
        if not name:
            raise self.error("expected a substitution name after '$('")
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
                buf.append(c)
                self.pos += 1
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
            if c == "\\" and self.pos + 1 < len(self.text) and self.text[self.pos + 1] == quote:
                buf.append(quote)
                self.pos += 2
            elif c == quote:
                self.pos += 1
                break
            elif self.text.startswith("$(", self.pos):
                if buf:
                    parts.append("".join(buf))
                    buf = []
                parts.append(self.substitution())
            else:
                buf.append(c)
                self.pos += 1
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


def _optenv(ctx: SubstitutionContext, args: list[str]) -> str:
    return ctx.env.get(args[0], args[1] if len(args) == 2 else "")


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


def _eval(ctx: SubstitutionContext, args: list[str]) -> str:
    return str(safe_eval(args[0]))


_HANDLERS: dict[str, Callable[[SubstitutionContext, list[str]], str]] = {
    "var": _var,
    "env": _env,
    "optenv": _optenv,
    "find-pkg-share": _find_pkg_share,
    "find-pkg-prefix": _find_pkg_prefix,
    "find-exec": _find_exec,
    "dirname": _dirname,
    "filename": _filename,
    "eval": _eval,
}

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
_MAX_POW = 10_000


def safe_eval(expr: str) -> object:
    """Evaluate a Python expression restricted to what ``$(eval)`` needs.

    Allowed: literals (numbers, strings, True/False/None, tuples, lists), ``+ - * / // % **``
    (exponent at most 10000), comparisons, ``and/or/not``, ``x if c else y`` and the
    functions and constants of :mod:`math` (as ``PythonExpression`` provides).

    Raises:
        SubstitutionError: a syntax error or anything outside that subset (attribute
            access, other names, calls of other functions, comprehensions, ...).
    """
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise SubstitutionError(f"$(eval {expr!r}): not a Python expression ({exc.msg})") from None

    def ev(node: ast.AST) -> object:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
            return node.value
        if isinstance(node, (ast.Tuple, ast.List)):
            items = [ev(e) for e in node.elts]
            return tuple(items) if isinstance(node, ast.Tuple) else items
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)) and abs(right) > _MAX_POW:
                raise SubstitutionError(f"$(eval {expr!r}): exponent too large")
            if isinstance(node.op, ast.Mult) and (isinstance(left, str) or isinstance(right, str)):
                raise SubstitutionError(f"$(eval {expr!r}): string repetition is not allowed")
            return _BINOPS[type(node.op)](left, right)
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
        if isinstance(node, ast.Name) and node.id in _MATH:
            return _MATH[node.id]
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and callable(_MATH.get(node.func.id)) and not node.keywords):
            return _MATH[node.func.id](*[ev(a) for a in node.args])
        what = type(node).__name__
        if isinstance(node, ast.Name):
            what = f"name '{node.id}' (only math names are defined; use True/False, not true/false)"
        raise SubstitutionError(f"$(eval {expr!r}): {what} is not allowed in a launch expression")

    try:
        return ev(tree)
    except SubstitutionError:
        raise
    except (ArithmeticError, TypeError, ValueError) as exc:
        raise SubstitutionError(f"$(eval {expr!r}) failed: {exc}") from None
