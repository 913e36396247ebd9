"""Parsing, substitution and scoping of launch XML, and FILE:LINE errors."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from katazuke.errors import KatazukeError
from katazuke.launcher import ParamDict, ParamFile, load_launch, parse_launch_arguments, resolve_launch_file


def load(data_dir: Path, env: dict, **args: str):
    return load_launch(data_dir / "main.launch.xml", args, env=env)


def names(graph) -> list[str]:
    return [p.label for p in graph.processes]


def test_nodes_conditions_and_labels(data_dir, fake_env):
    g = load(data_dir, fake_env)
    assert names(g) == ["root_node", "a", "b", "abs", "from_include", "after_group", "top_include",
                        "uses_leak", "exe"]
    g2 = load(data_dir, fake_env, with_b="false")
    assert "c" in names(g2) and "b" not in names(g2)
    assert g.arguments["ns"] == ("robot", "top namespace")


def test_namespaces(data_dir, fake_env):
    g = load(data_dir, fake_env, ns="r1")
    ns = {p.label: p.namespace for p in g.processes if p.kind == "node"}
    assert ns["root_node"] is None          # nothing pushed, nothing given
    assert ns["a"] == "/r1/sub"             # relative node namespace below the pushed one
    assert ns["b"] == "/r1"
    assert ns["abs"] == "/absolute"         # absolute namespace replaces the pushed one
    assert ns["from_include"] == "/r1"      # includes see the enclosing group's namespace
    assert ns["after_group"] is None        # the group's push is scoped
    assert g.process("a").fully_qualified_name == "/r1/sub/a"


def test_set_parameter_and_set_remap_are_scoped(data_dir, fake_env):
    g = load(data_dir, fake_env, use_sim_time="true")
    assert g.process("a").global_params == [("use_sim_time", True)]
    assert g.process("from_include").global_params == [("use_sim_time", True)]
    assert g.process("after_group").global_params == []
    assert g.process("root_node").global_params == []
    assert g.process("a").remaps == [("cmd", "/global_cmd"), ("status", "robot_status")]
    assert g.process("after_group").remaps == []


def test_params_typed_and_in_order(data_dir, fake_env):
    a = load(data_dir, fake_env).process("a")
    assert a.params[0] == ParamFile(data_dir / "params.yaml")
    assert [p.values for p in a.params[1:]] == [
        {"greeting": "hi robot"}, {"ratio": 0.5}, {"flag": True}, {"list": [1, 2, 3]},
        {"nested": {"x": 1}}]
    assert load(data_dir, fake_env, rate="7").process("root_node").params == [ParamDict({"rate": 7})]


def test_argv_matches_launch_ros(data_dir, fake_env, tmp_path):
    g = load(data_dir, fake_env, use_sim_time="true")
    a = g.process("a")
    argv = a.argv(tmp_path)
    gen = [tmp_path / f"a_params_{i}.yaml" for i in range(1, 6)]
    assert argv == [
        a.executable, "--ros-args", "-r", "__node:=a", "-r", "__ns:=/robot/sub",
        "-p", "use_sim_time:=True", "--params-file", str(data_dir / "params.yaml"),
        *[x for p in gen for x in ("--params-file", str(p))],
        "-r", "cmd:=/global_cmd", "-r", "status:=robot_status"]
    # Generated files are keyed by the fully qualified name when it is known ...
    assert yaml.safe_load(gen[0].read_text()) == {"/robot/sub/a": {"ros__parameters": {"greeting": "hi robot"}}}
    # ... and by /** otherwise (launch_ros behaviour).
    root = g.process("root_node")
    argv = root.argv(tmp_path)
    assert "__ns:=" not in " ".join(argv)
    assert yaml.safe_load(Path(argv[-1]).read_text()) == {"/**": {"ros__parameters": {"rate": 5}}}
    assert a.executable.endswith("/lib/fakepkg/node_a")


def test_include_args_leak_like_ros(data_dir, fake_env):
    g = load(data_dir, fake_env)
    inc = g.process("from_include")
    assert inc.args == ["--opt", "d", f"{data_dir}/x"]   # $(dirname) is the included file's
    assert g.process("top_include").args == ["--opt", "given", f"{data_dir}/x"]
    assert g.process("uses_leak").args == ["leaked_top_include"]   # includes are not scoped
    assert g.process("after_group").args == ["--mode", "visible"]  # scoped="false" leaks


def test_env_scoping_and_safe_defaults(data_dir, fake_env):
    g = load_launch(data_dir / "main.launch.xml", {}, env=fake_env, child_env={"ROS_DOMAIN_ID": "42"})
    a, root = g.process("a"), g.process("root_node")
    assert a.env["KZ_GROUP_ENV"] == "in_group" and a.env["KZ_NODE_ENV"] == "a_only"
    assert "KZ_GROUP_ENV" not in root.env and "KZ_GROUP_ENV" not in g.process("after_group").env
    for p in g.processes:
        assert p.env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
        assert p.env["ROS_DOMAIN_ID"] == "42"
    env = dict(fake_env, ROS_AUTOMATIC_DISCOVERY_RANGE="SUBNET")
    assert load(data_dir, env).process("a").env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SUBNET"


def test_executable_cmd_split(data_dir, fake_env):
    exe = load(data_dir, fake_env).process("exe")
    assert exe.kind == "executable" and exe.args == ["-c", "print(1)"]
    assert exe.argv() == [fake_env["KZ_PY"], "-c", "print(1)"]


def test_cmdline_split_keeps_substituted_values_whole(tmp_path, fake_env):
    p = write(tmp_path, '<let name="s" value="x y"/>\n'
                        '<executable cmd="$(env KZ_PY) a$(var s)b \'q r\' $(var s) c"/>')
    exe = load_launch(p, {}, env=fake_env).processes[0]
    assert exe.args == ["ax yb", "q r", "x y", "c"]


def test_pkg_file_resolution(fake_env, data_dir):
    share = Path(fake_env["AMENT_PREFIX_PATH"]) / "share" / "fakepkg" / "launch"
    (share / "x.launch.xml").write_text("<launch/>")
    assert resolve_launch_file(["fakepkg", "x.launch.xml"], fake_env) == share / "x.launch.xml"
    with pytest.raises(KatazukeError, match="not found"):
        resolve_launch_file(["fakepkg", "y.launch.xml"], fake_env)
    assert parse_launch_arguments(["a:=1", "b:=x:=y"]) == {"a": "1", "b": "x:=y"}
    with pytest.raises(KatazukeError, match="name:=value"):
        parse_launch_arguments(["a=1"])


# ------------------------------------------------------------------------------ errors

def write(tmp_path: Path, body: str, name: str = "t.launch.xml") -> Path:
    p = tmp_path / name
    p.write_text('<?xml version="1.0"?>\n<launch>\n' + body + "\n</launch>\n")
    return p


def expect_error(path: Path, line: int, fragment: str, env: dict, **args: str) -> str:
    with pytest.raises(KatazukeError) as info:
        load_launch(path, args, env=env)
    msg = str(info.value)
    assert msg.startswith(f"{path}:{line}: "), msg
    assert re.search(fragment, msg), msg
    return msg


@pytest.mark.parametrize("body,line,fragment", [
    ('<nodes pkg="fakepkg" exec="node_a"/>', 3, r"unknown tag <nodes>"),
    ('<group>\n<node pkg="fakepkg" exec="node_a" colour="red"/>\n</group>', 4,
     r"unknown attribute 'colour' on <node>"),
    ('<node pkg="fakepkg" exec="node_a">\n  <param name="p" value="1" if="true"/>\n</node>', 4,
     r"unknown attribute 'if' on <param>"),
    ('<arg name="robot" description="which robot"/>', 3, r"required launch argument 'robot'.*robot:=VALUE"),
    ('<let name="x" value="$(var y"/>', 3, r"attribute 'value': bad substitution.*not closed"),
    ('<let name="x" value="$(vra y)"/>', 3, r"unknown substitution"),
    ('\n<node pkg="fakepkg" exec="node_a" name="$(var undefined_arg)"/>', 4, r"'undefined_arg' does not exist"),
    ('<node pkg="fakepkg" exec="node_a" args="$(env KZ_SURELY_UNSET_VAR)"/>', 3, r"KZ_SURELY_UNSET_VAR"),
    ('<include file="$(dirname)/nope.launch.xml"/>', 3, r"included launch file not found"),
    ('<node pkg="fakepkg" exec="no_such_exe"/>', 3, r"executable 'no_such_exe' not found in package 'fakepkg'.*node_a"),
    ('<node pkg="no_such_pkg" exec="x"/>', 3, r"package 'no_such_pkg' not found"),
    ('<executable cmd="no-such-program-kz --x"/>', 3, r"'no-such-program-kz' not found"),
    ('<node pkg="fakepkg" exec="node_a">\n<param from="/nope/p.yaml"/>\n</node>', 4, r"parameter file not found"),
    ('<node pkg="fakepkg" exec="node_a" if="maybe"/>', 3, r"'if' must be true/false"),
    ('<node pkg="fakepkg" exec="node_a" name="bad-name"/>', 3, r"invalid node name"),
    ('<node pkg="fakepkg" exec="node_a" namespace="a//b"/>', 3, r"invalid namespace"),
    ('<node pkg="fakepkg" exec="node_a" on_exit="restart"/>', 3, r"on_exit supports only 'shutdown'"),
    ('<node pkg="fakepkg" exec="node_a" respawn_delay="soon"/>', 3, r"respawn_delay must be a number"),
    ('<node pkg="fakepkg" exec="node_a">\n<param name="m" value="{a: 1}"/>\n</node>', 4, r"a parameter value must be"),
    ('<node exec="node_a" pkg="fakepkg" output="loud"/>', 3, r"output must be screen, log or both"),
    ('<let name="x" value="$(eval \'__import__(1)\')"/>', 3, r"not allowed"),
    ('<node pkg="fakepkg"/>', 3, r"needs the attribute\(s\) 'exec'"),
    ('<arg name="c" default="x">\n<choice value="a"/><choice value="b"/>\n</arg>', 3, r"'x' is not one of: a, b"),
    ('<node pkg="fakepkg" exec="node_a"', 4, r"malformed XML"),
])
def test_errors_carry_file_and_line(tmp_path, fake_env, body, line, fragment):
    expect_error(write(tmp_path, body), line, fragment, fake_env)


def test_include_missing_required_arg_points_at_include(tmp_path, fake_env):
    write(tmp_path, '<arg name="needed" description="must be given"/>', "inner.launch.xml")
    outer = write(tmp_path, '\n\n<include file="$(dirname)/inner.launch.xml"/>', "outer.launch.xml")
    msg = expect_error(outer, 5, r"needs argument 'needed'", fake_env)
    assert f"{tmp_path / 'inner.launch.xml'}:3" in msg


def test_error_inside_included_file_names_that_file(tmp_path, fake_env):
    write(tmp_path, '\n<node pkg="fakepkg" exec="node_a" typo="1"/>', "inner.launch.xml")
    outer = write(tmp_path, '<include file="$(dirname)/inner.launch.xml"/>', "outer.launch.xml")
    with pytest.raises(KatazukeError) as info:
        load_launch(outer, {}, env=fake_env)
    assert str(info.value).startswith(f"{tmp_path / 'inner.launch.xml'}:4: unknown attribute 'typo'")


def test_unknown_attribute_is_reported_even_in_a_disabled_branch(tmp_path, fake_env):
    p = write(tmp_path, '<group if="false">\n<node pkg="fakepkg" exec="node_a" bogus="1"/>\n</group>')
    expect_error(p, 4, r"unknown attribute 'bogus'", fake_env)


def test_include_recursion_is_an_error(tmp_path, fake_env):
    p = write(tmp_path, '<include file="$(filename)"/>', "self.launch.xml")
    expect_error(p, 3, r"include recursion", fake_env)
