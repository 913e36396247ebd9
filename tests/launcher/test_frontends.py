"""The launch-language features of issue 18 beyond the shared conformance cases: YAML and
Python launch files, composable nodes at run time, parameter typing, timers, shutdown and
per-process escalation, and the errors (always ``FILE:LINE: message``)."""
from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import pytest
import yaml

from katazuke.errors import KatazukeError
from katazuke.launcher import Supervisor, load_launch
from katazuke.launcher.graph import ParamFile


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def xml(tmp_path: Path, body: str, name: str = "t.launch.xml") -> Path:
    return write(tmp_path, name, f"<launch>\n{body}\n</launch>\n")


# ----------------------------------------------------------------------------- YAML frontend

def test_yaml_launch_file_resolves_like_xml(tmp_path: Path, fake_env):
    p = write(tmp_path, "a.launch.yaml", """\
launch:
  - arg: {name: who, default: yaml, description: d}
  - group:
      children:
        - push_ros_namespace: {namespace: ns}
        - node:
            pkg: fakepkg
            exec: node_a
            name: n
            param:
              - {name: rate, value: 5}
              - {name: list, value: [1, 2]}
            remap:
              - {from: a, to: b}
  - executable: {cmd: "echo $(var who)", name: e}
""")
    g = load_launch(p, {}, env=fake_env)
    node, exe = g.processes
    assert node.namespace == "/ns" and node.node_name == "n" and node.remaps == [("a", "b")]
    assert [x.values for x in node.params] == [{"rate": 5}, {"list": [1, 2]}]
    assert exe.args == ["yaml"] and g.arguments["who"] == ("yaml", "d")


@pytest.mark.parametrize("text,line,fragment", [
    ("launch:\n  - node: {pkg: fakepkg, exec: node_a, bogus: 1}\n", 2, "unknown attribute 'bogus'"),
    ("launch:\n  - [1, 2]\n", 2, "one key, the tag"),
    ("launch: {a: 1}\n", 1, "holding a list of actions"),
    ("launch:\n  - node: {pkg: x\n", 3, "malformed YAML"),
])
def test_yaml_errors_carry_file_and_line(tmp_path: Path, fake_env, text, line, fragment):
    p = write(tmp_path, "bad.launch.yaml", text)
    with pytest.raises(KatazukeError, match=rf"^{p}:{line}: .*{fragment}"):
        load_launch(p, {}, env=fake_env)


# ----------------------------------------------------------------------------- Python frontend

PY_CHILD = """\
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable, GroupAction
from launch.substitutions import LaunchConfiguration
from launch.conditions import IfCondition
from launch_ros.actions import Node, PushRosNamespace


def generate_launch_description():
    rate = LaunchConfiguration('rate')
    return LaunchDescription([
        DeclareLaunchArgument('rate', default_value='10', description='publish rate'),
        DeclareLaunchArgument('enable', default_value='true'),
        SetEnvironmentVariable('KZ_FROM_PY', 'yes'),
        GroupAction([
            PushRosNamespace('inner'),
            Node(package='fakepkg', executable='node_a', name='py_node', output='screen',
                 parameters=[{'rate': rate, 'label': '42', 'nested': {'x': 1.5}}],
                 remappings=[('in', '/out')], arguments=['--flag', 'two words'],
                 condition=IfCondition(LaunchConfiguration('enable'))),
        ]),
    ])
"""


def test_python_launch_file_subset(tmp_path: Path, fake_env):
    write(tmp_path, "child.launch.py", PY_CHILD)
    parent = write(tmp_path, "parent.launch.py", """\
import os
from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource


def generate_launch_description():
    here = os.path.dirname(__file__)
    return LaunchDescription([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(here, 'child.launch.py')),
        launch_arguments={'rate': '20'}.items())])
""")
    g = load_launch(parent, {}, env=fake_env)
    (node,) = g.processes
    assert node.node_name == "py_node" and node.namespace == "/inner" and node.output == "screen"
    assert [x.values for x in node.params] == [{"rate": 20}, {"label": "42"}, {"nested": {"x": 1.5}}]
    assert node.remaps == [("in", "/out")] and node.args == ["--flag", "two words"]
    assert node.env["KZ_FROM_PY"] == "yes"
    assert load_launch(parent.with_name("child.launch.py"), {"enable": "false"}, env=fake_env).processes == []
    assert "launch" not in sys.modules and "launch_ros" not in sys.modules


@pytest.mark.parametrize("body,line,fragment", [
    ("from launch.actions import OpaqueFunction\n", 1, r"launch\.actions\.OpaqueFunction is beyond.*needs ROS's `launch` package"),
    ("from launch import LaunchDescription\n\n\ndef generate_launch_description():\n    return 1 / 0\n",
     5, "raised ZeroDivisionError"),
    ("x = (\n", 1, "not valid Python"),
    ("from launch import LaunchDescription\nfrom launch_ros.actions import Node\n\n\n"
     "def generate_launch_description():\n    return LaunchDescription([Node(executable='a', bogus=1)])\n",
     6, r"Node\(bogus=...\) is beyond"),
])
def test_python_launch_file_errors(tmp_path: Path, fake_env, body, line, fragment):
    p = write(tmp_path, "bad.launch.py", body)
    with pytest.raises(KatazukeError, match=rf"^{p}:{line}: .*{fragment}"):
        load_launch(p, {}, env=fake_env)


# ----------------------------------------------------------------------------- parameters

def test_param_types_and_value_sep(tmp_path: Path, fake_env):
    p = xml(tmp_path, '''<let name="n" value="7"/>
<node pkg="fakepkg" exec="node_a" name="n">
  <param name="s" value="$(var n)" type="str"/>
  <param name="f" value="2" type="float"/>
  <param name="li" value="1;2" value-sep=";" type="list_of_int"/>
  <param name="quoted" value="'3'"/>
  <param name="subst" value="$(var n)"/>
  <param name="esc" value="a\\,b"/>
</node>''')
    node = load_launch(p, {}, env=fake_env).processes[0]
    assert [x.values for x in node.params] == [{"s": "7"}, {"f": 2.0}, {"li": [1, 2]}, {"quoted": "3"},
                                               {"subst": 7}, {"esc": "a,b"}]
    bad = xml(tmp_path, '<node pkg="fakepkg" exec="node_a"><param name="x" value="a" type="int"/></node>',
              "bad.launch.xml")
    with pytest.raises(KatazukeError, match=rf"^{bad}:2: .*not of type 'int'"):
        load_launch(bad, {}, env=fake_env)


def test_param_file_allow_substs_is_substituted_at_run_time(tmp_path: Path, fake_env):
    write(tmp_path, "p.yaml", "/**:\n  ros__parameters:\n    who: $(var who)\n")
    p = xml(tmp_path, '<let name="who" value="me"/>\n<set_parameters_from_file filename="$(dirname)/p.yaml"/>\n'
                      '<node pkg="fakepkg" exec="node_a"><param from="$(dirname)/p.yaml" allow_substs="true"/></node>')
    node = load_launch(p, {}, env=fake_env).processes[0]
    assert node.global_param_files == [ParamFile(tmp_path / "p.yaml")]
    assert yaml.safe_load(node.params[0].text) == {"/**": {"ros__parameters": {"who": "me"}}}
    argv = node.argv(tmp_path)
    files = [argv[i + 1] for i, a in enumerate(argv) if a == "--params-file"]
    assert files[0] == str(tmp_path / "p.yaml") and "me" in Path(files[1]).read_text()


# ----------------------------------------------------------------------------- components

CONTAINER = '''<node_container pkg="rclcpp_components" exec="component_container" name="box" namespace="">
  <composable_node pkg="comps" plugin="comps::ObjectMap" name="map" namespace="ns">
    <param name="rate" value="3"/>
    <remap from="a" to="b"/>
    <extra_arg name="use_intra_process_comms" value="true"/>
  </composable_node>
</node_container>
<load_composable_node target="/box">
  <composable_node pkg="comps" plugin="comps::Talker" name="talk"/>
</load_composable_node>'''


def test_components_run_as_one_process_each(tmp_path: Path, fake_env, prefix_maker):
    prefix_maker(tmp_path / "comps_prefix", "comps", ("object_map", "talker"))
    env = dict(fake_env, AMENT_PREFIX_PATH=f"{fake_env['AMENT_PREFIX_PATH']}:{tmp_path / 'comps_prefix'}")
    g = load_launch(xml(tmp_path, CONTAINER), {}, env=env)
    (box,) = g.processes
    assert box.kind == "container" and box.executable == ""  # rclcpp_components is not installed
    assert [c.fully_qualified_name for c in box.components] == ["/ns/map", "/talk"]
    assert box.describe()["components"][0]["extra_args"] == {"use_intra_process_comms": True}
    run, notes = g.runnable(env)
    m, t = run.processes
    assert (m.label, m.node_name, m.namespace, m.remaps) == ("map", "map", "/ns", [("a", "b")])
    assert m.executable.endswith("lib/comps/object_map") and m.params[0].values == {"rate": 3}
    assert t.executable.endswith("lib/comps/talker") and len(notes) == 2
    assert "use_intra_process_comms=True not applicable" in notes[0]


def test_component_without_executable_and_unknown_target(tmp_path: Path, fake_env, prefix_maker):
    prefix_maker(tmp_path / "comps_prefix", "comps", ())
    env = dict(fake_env, AMENT_PREFIX_PATH=f"{fake_env['AMENT_PREFIX_PATH']}:{tmp_path / 'comps_prefix'}")
    p = xml(tmp_path, CONTAINER)
    with pytest.raises(KatazukeError, match=rf"^{p}:3: component comps::ObjectMap cannot run here.*object_map"):
        load_launch(p, {}, env=env).runnable(env)
    bad = xml(tmp_path, '<load_composable_node target="nope"/>', "bad.launch.xml")
    with pytest.raises(KatazukeError, match=rf"^{bad}:2: .*no <node_container>"):
        load_launch(bad, {}, env=env)


# ----------------------------------------------------------------------------- run time

def _proc(label: str, mode: str, extra: str = "") -> str:
    return f'<executable cmd="$(env KZ_PY) $(env KZ_PROC) {mode}" name="{label}" output="screen" {extra}/>'


def test_timer_delays_a_process_and_shutdown_ends_the_launch(tmp_path: Path, fake_env):
    p = xml(tmp_path, _proc("early", "sleep") + "\n<timer period=\"0.5\">" + _proc("late", "exit 0 0")
            + '</timer>\n<timer period="1.5"><shutdown reason="enough"/></timer>')
    g = load_launch(p, {}, env=fake_env)
    assert [x.start_delay for x in g.processes] == [0.0, 0.5] and g.shutdown == (1.5, "enough")
    out, err = io.StringIO(), io.StringIO()
    sup = Supervisor(g, stdout=out, stderr=err, shutdown_timeout=5.0)
    t0 = time.monotonic()
    assert sup.run(handle_signals=False) == 0
    starts = {e.label: e.t - t0 for e in sup.events if e.kind == "start"}
    assert starts["late"] >= 0.5 > starts["early"]
    assert "shutting down: <shutdown> in the launch file: enough" in err.getvalue()


def test_sigterm_timeout_shortens_the_wait(tmp_path: Path, fake_env):
    p = xml(tmp_path, _proc("deaf", "ignore-int", 'sigterm_timeout="0.2"'))
    g = load_launch(p, {}, env=fake_env)
    g.shutdown = (1.0, "test")
    err = io.StringIO()
    sup = Supervisor(g, stdout=io.StringIO(), stderr=err, shutdown_timeout=30.0)
    t0 = time.monotonic()
    sup.run(handle_signals=False)
    assert time.monotonic() - t0 < 10.0 and "escalating to SIGTERM" in err.getvalue()


@pytest.mark.parametrize("body,fragment", [
    ("import sys\nsys.exit(3)\n", r":2: the launch file called sys.exit\(3\)"),
    ("from launch.actions import *\n\n\ndef generate_launch_description():\n"
     "    return LaunchDescription([])\n", r":5: the launch file raised NameError"),
])
def test_python_launch_file_exits_and_star_imports_are_errors_not_tracebacks(tmp_path: Path, fake_env,
                                                                             body, fragment):
    p = write(tmp_path, "x.launch.py", body)
    with pytest.raises(KatazukeError, match=fragment):
        load_launch(p, {}, env=fake_env)


@pytest.mark.parametrize("expr,fragment", [
    ("os.listdir(1)", "NotADirectoryError"), ("math.factorial(100000)", "cannot be printed"),
])
def test_eval_failures_are_substitution_errors(tmp_path: Path, fake_env, expr, fragment):
    p = xml(tmp_path, f'<let name="x" value="$(eval &quot;{expr}&quot; os)"/>')
    with pytest.raises(KatazukeError, match=rf"^{p}:2: .*{fragment}"):
        load_launch(p, {}, env=fake_env)


def test_python_launch_file_wider_subset(tmp_path: Path, fake_env, prefix_maker):
    prefix_maker(tmp_path / "comps_prefix", "comps", ("talker",))
    env = dict(fake_env, AMENT_PREFIX_PATH=f"{fake_env['AMENT_PREFIX_PATH']}:{tmp_path / 'comps_prefix'}")
    write(tmp_path, "p.yaml", "/**:\n  ros__parameters:\n    who: $(var who)\n")
    p = write(tmp_path, "w.launch.py", """\
from launch import LaunchDescription
from launch.actions import ExecuteProcess, SetLaunchConfiguration, TimerAction, Shutdown
from launch.substitutions import Command, LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import ComposableNodeContainer, Node
from launch_ros.descriptions import ComposableNode, ParameterFile, ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    desc = ParameterValue(Command(['echo ', LaunchConfiguration('who')]), value_type=str)
    return LaunchDescription([
        SetLaunchConfiguration('who', 'me'),
        Node(package='fakepkg', executable='node_a', name='n',
             parameters=[{'robot_description': desc},
                         ParameterFile(PathJoinSubstitution([%r, 'p.yaml']), allow_substs=True)]),
        TimerAction(period=PythonExpression(['1 + ', '1']), actions=[
            ExecuteProcess(cmd=['echo', PathJoinSubstitution([FindPackageShare('fakepkg'), 'x'])],
                           name='later')]),
        ComposableNodeContainer(name='box', namespace='', package='rclcpp_components',
                                executable='component_container', composable_node_descriptions=[
                                    ComposableNode(package='comps', plugin='comps::Talker', name='t',
                                                   parameters=[{'rate': 2}],
                                                   extra_arguments=[{'use_intra_process_comms': True}])]),
        Shutdown(reason='bye'),
    ])
""" % str(tmp_path))
    g = load_launch(p, {}, env=env)
    node, later, box = g.processes
    assert node.params[0].values == {"robot_description": "me\n"}
    assert yaml.safe_load(node.params[1].text)["/**"]["ros__parameters"]["who"] == "me"
    assert later.start_delay == 2.0 and later.args[0].endswith("share/fakepkg/x")
    assert box.components[0].extra_args == {"use_intra_process_comms": True}
    assert box.components[0].params[0].values == {"rate": 2} and g.shutdown == (0.0, "bye")


def test_lifecycle_node_unset_reset_env_set_ros_log_dir(tmp_path: Path, fake_env):
    env = dict(fake_env, ROS_LOG_DIR="/logs")
    p = xml(tmp_path, '''<let name="x" value="1"/><unset name="x"/>
<set_env name="A" value="1"/><reset_env/><set_ros_log_dir new_log_dir="sub"/>
<lifecycle_node pkg="fakepkg" exec="node_a" name="lc" namespace="ns" args="$(var x gone)"/>''')
    (lc,) = load_launch(p, {}, env=env).processes
    assert lc.node_name == "lc" and lc.args == ["gone"] and "A" not in lc.env
    assert lc.env["ROS_LOG_DIR"] == "/logs/sub"
    bad = xml(tmp_path, '<lifecycle_node pkg="fakepkg" exec="node_a" name="lc" autostart="true"/>', "b.launch.xml")
    with pytest.raises(KatazukeError, match=rf"^{bad}:2: .*autostart"):
        load_launch(bad, {}, env=env)


def test_supervisor_runs_each_component_as_a_process(tmp_path: Path, fake_env, prefix_maker):
    prefix_maker(tmp_path / "comps_prefix", "comps", ("object_map", "talker"))
    env = dict(fake_env, AMENT_PREFIX_PATH=f"{fake_env['AMENT_PREFIX_PATH']}:{tmp_path / 'comps_prefix'}")
    g = load_launch(xml(tmp_path, CONTAINER + '\n<timer period="1"><shutdown/></timer>'), {}, env=env)
    err = io.StringIO()
    sup = Supervisor(g, stdout=io.StringIO(), stderr=err, shutdown_timeout=5.0)
    assert [p.label for p in sup.graph.processes] == ["map", "talk"]
    sup.run(handle_signals=False)
    assert {e.label for e in sup.events if e.kind == "start"} == {"map", "talk"}
    assert "note: component /ns/map (comps::ObjectMap) of container /box runs as its own process" in err.getvalue()


def test_python_package_lookups_see_the_launch_environment(tmp_path: Path, fake_env):
    p = write(tmp_path, "e.launch.py", """\
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import LogInfo


def generate_launch_description():
    return LaunchDescription([LogInfo(msg=get_package_share_directory('fakepkg'))])
""")
    g = load_launch(p, {}, env=fake_env)
    assert g.messages == [f"{fake_env['AMENT_PREFIX_PATH']}/share/fakepkg"]
