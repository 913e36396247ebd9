"""Substitution grammar and evaluation (launch frontend semantics)."""
from __future__ import annotations

from pathlib import Path

import pytest

from katazuke.launcher.substitutions import (Sub, SubstitutionContext, SubstitutionError, evaluate,
                                             parse_template, safe_eval)


def ev(text: str, configs=None, env=None, file=None) -> str:
    return evaluate(parse_template(text), SubstitutionContext(configs or {}, env or {}, file))


def test_plain_text_is_one_literal():
    assert parse_template("hello world") == ("hello world",)
    assert parse_template("") == ()
    assert ev("cost $5 (approx)") == "cost $5 (approx)"


def test_var_and_nesting():
    configs = {"which": "b", "b": "bee", "n": "3"}
    assert parse_template("x$(var which)y") == ("x", Sub("var", (("which",),)), "y")
    assert ev("$(var $(var which))", configs) == "bee"
    assert ev("pre_$(var b)_$(var n)", configs) == "pre_bee_3"
    assert ev("$(var missing fallback)", configs) == "fallback"


def test_quotes_keep_spaces_and_hold_substitutions():
    configs = {"n": "4"}
    assert ev("$(var missing 'two words')") == "two words"
    assert ev('$(eval "$(var n) * 2")', configs) == "8"
    assert ev("$(eval '\\'a\\' + \\'b\\'')") == "ab"


def test_env_dirname_filename(tmp_path: Path):
    env = {"HOME_X": "/h"}
    f = tmp_path / "x.launch.xml"
    assert ev("$(env HOME_X)", env=env) == "/h"
    assert ev("$(env NOPE dflt)", env=env) == "dflt"
    assert ev("$(env NOPE '')", env=env) == ""
    assert ev("$(dirname)/p.yaml", file=f) == f"{tmp_path}/p.yaml"
    assert ev("$(filename)", file=f) == str(f)
    with pytest.raises(SubstitutionError, match="NOPE"):
        ev("$(env NOPE)", env=env)


def test_find_pkg_share(fake_env):
    prefix = fake_env["AMENT_PREFIX_PATH"]
    assert ev("$(find-pkg-share fakepkg)/launch", env=fake_env) == f"{prefix}/share/fakepkg/launch"
    assert ev("$(find-pkg-prefix fakepkg)", env=fake_env) == prefix
    with pytest.raises(SubstitutionError, match="package 'nopkg' not found"):
        ev("$(find-pkg-share nopkg)", env=fake_env)


@pytest.mark.parametrize("text,fragment", [
    ("$(var x", "not closed"),
    ("$(nosuch x)", "unknown substitution"),
    ("$(var)", "takes 1 to 2"),
    ("$(dirname x)", "takes 0"),
    ("$(var 'open)", "unterminated"),
    ("$()", "expected a substitution name"),
])
def test_syntax_errors(text, fragment):
    with pytest.raises(SubstitutionError, match=fragment):
        parse_template(text)


def test_undefined_var_names_the_fix():
    with pytest.raises(SubstitutionError, match=r"'nope' does not exist.*nope:=VALUE"):
        ev("$(var nope)")


@pytest.mark.parametrize("expr,value", [
    ("1 + 2 * 3", 7), ("2 ** 10", 1024), ("'a' == 'a'", True), ("not False", True),
    ("3 if 1 < 2 else 4", 3), ("sqrt(16)", 4.0), ("pi > 3", True), ("'x' in 'xyz'", True),
    ("True and 0", 0), ("(1, 2)", (1, 2)),
])
def test_safe_eval_allows_expressions(expr, value):
    assert safe_eval(expr) == value


@pytest.mark.parametrize("expr", [
    "__import__('os').system('true')", "open('/etc/passwd')", "(1).__class__", "[x for x in (1,)]",
    "true", "9 ** 99999", "'a' * 1000000", "lambda: 1",
])
def test_safe_eval_rejects_everything_else(expr):
    with pytest.raises(SubstitutionError):
        safe_eval(expr)


@pytest.mark.parametrize("value", ["set", "", "0", "false"])
def test_var_default_applies_only_when_unset(value):
    """``$(var name default)``: a set configuration wins over the default, even when its value
    is empty or falsy; the default is used only when ``name`` is not set at all."""
    configs = {"name": value}
    assert ev("$(var name fallback)", configs) == value
    assert ev("<$(var name 'two words')>", configs) == f"<{value}>"
    assert ev("$(var other fallback)", configs) == "fallback"


def test_var_default_in_launch_file_loses_to_command_line(tmp_path, fake_env):
    from katazuke.launcher import load_launch

    p = tmp_path / "v.launch.xml"
    p.write_text('<launch>\n  <arg name="mode" default="from_arg"/>\n'
                 '  <executable cmd="$(env KZ_PY) $(env KZ_PROC) print $(var mode inline_default)"'
                 ' name="x"/>\n</launch>\n')
    assert load_launch(p, {}, env=fake_env).processes[0].args[-1] == "from_arg"
    assert load_launch(p, {"mode": "given"}, env=fake_env).processes[0].args[-1] == "given"


def test_optenv_is_rejected_with_the_ros2_spelling():
    with pytest.raises(SubstitutionError, match=r"ROS 1 only.*\$\(env NAME DEFAULT\)"):
        parse_template("$(optenv NOPE)")


@pytest.mark.parametrize("text,value", [
    ("a\\'b", "a'b"), ("\\$(var x)", "$(var x)"), ("$(var missing \\$\\(x\\))", "$(x)"),
    ("$(var missing 'it\\'s')", "it's"), ("\\a", "a"), ("end\\", "end\\"),
])
def test_backslash_makes_the_next_character_literal(text, value):
    assert ev(text) == value


@pytest.mark.parametrize("text,value", [
    ("$(not true)", "false"), ("$(and true 0)", "false"), ("$(or false 1)", "true"),
    ("$(any false false on)", "true"), ("$(all true 1 off)", "false"),
    ("$(equals 1 1.0)", "true"), ("$(equals True true)", "true"), ("$(not-equals a b)", "true"),
    ("$(if true yes no)", "yes"), ("$(if false yes)", ""), ("$(if 0 $(var nope) fine)", "fine"),
])
def test_boolean_and_comparison_substitutions(text, value):
    assert ev(text) == value


def test_boolean_substitution_rejects_non_booleans():
    with pytest.raises(SubstitutionError, match="'maybe' is not a boolean"):
        ev("$(not maybe)")


@pytest.mark.parametrize("expr,value", [
    ("'Real'.lower() == 'real'", True), ("len('abc')", 3), ("'a,b'.split(',')[1]", "b"),
    ("'abcdef'[1:3]", "bc"), ("math.ceil(1.3)", 2), ("max(1, 4)", 4), ("{'a': 1}['a']", 1),
    ("'-' * 3", "---"), ("str(2) + 'x'", "2x"),
])
def test_safe_eval_has_upstreams_namespace(expr, value):
    assert safe_eval(expr) == value


def test_eval_two_argument_form_imports_modules():
    assert ev('$(eval "os.path.basename(\'/a/b\')" os)') == "b"
    with pytest.raises(SubstitutionError, match="cannot import module 'no_such_mod'"):
        ev("$(eval 1 no_such_mod)")


def test_command_file_content_param_anon(tmp_path: Path):
    (tmp_path / "c.txt").write_text("hello")
    assert ev("$(command 'echo hi')", env={"PATH": "/usr/bin:/bin"}) == "hi\n"
    with pytest.raises(SubstitutionError, match="exited with"):
        ev("$(command false)", env={"PATH": "/usr/bin:/bin"})
    assert ev(f"$(file-content {tmp_path}/c.txt)") == "hello"
    ctx = SubstitutionContext({}, {}, None, params={"rate": 5})
    assert evaluate(parse_template("$(param rate) $(param nope d)"), ctx) == "5 d"
    first = evaluate(parse_template("$(anon n)"), ctx)
    assert first.startswith("n_") and evaluate(parse_template("$(anon n)"), ctx) == first
