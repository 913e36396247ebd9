"""Launch file, params file and the tour follower (no DDS traffic: fast)."""
from __future__ import annotations

import dataclasses
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import yaml

from katazuke.config import load_config


def test_params_yaml_holds_valid_fields_of_the_node_configs(repo) -> None:
    """Every key of sim.yaml is a field (nested: ``sim.*`` of EnvConfig) and loads; the file
    holds only overrides, so a tuning change is made in the dataclass or here, once."""
    from katazuke_ros.sim_bridge import SimBridgeConfig
    from katazuke_ros.tour_node import TourConfig

    data = yaml.safe_load((repo / "launch" / "params" / "sim.yaml").read_text())
    assert set(data) == {"sim_bridge", "tour"}
    for node, cls in (("sim_bridge", SimBridgeConfig), ("tour", TourConfig)):
        params = data[node]["ros__parameters"]
        fields = {f.name for f in dataclasses.fields(cls)}
        assert set(params) <= fields, (node, set(params) - fields)
        load_config(cls, params)  # types and ranges valid, nested keys too


def test_bridge_config_nests_the_env_config() -> None:
    """The simulator's settings are katazuke.sim.EnvConfig itself, not copies of its fields;
    the bridge's own defaults (empty room, 10-20 objects, no per-step render) stay."""
    from katazuke.errors import ConfigError
    from katazuke.sim import EnvConfig
    from katazuke_ros.sim_bridge import SimBridgeConfig

    env_fields = {f.name for f in dataclasses.fields(EnvConfig)}
    own = {f.name for f in dataclasses.fields(SimBridgeConfig)} - {"sim"}
    assert not own & env_fields, own & env_fields
    cfg = SimBridgeConfig()
    assert isinstance(cfg.sim, EnvConfig)
    assert (cfg.sim.profile, cfg.sim.n_objects, cfg.sim.render_observation) == (
        "none", (10, 20), False)
    loaded = load_config(SimBridgeConfig, {"sim": {"profile": "train", "n_objects": [1, 2]},
                                           "camera_hz": 5.0})
    assert (loaded.sim.profile, loaded.sim.n_objects, loaded.camera_hz) == ("train", (1, 2), 5.0)
    assert loaded.every(loaded.camera_hz) == 6
    with pytest.raises(ConfigError, match="n_objects"):
        load_config(SimBridgeConfig, {"sim": {"n_objects": [5, 2]}})


def test_launch_file_is_valid_ros2_launch_xml(repo) -> None:
    root = ET.parse(repo / "launch" / "sim.launch.xml").getroot()
    assert root.tag == "launch"
    args = {a.get("name"): a for a in root.iter("arg")}
    assert {"gui", "profile", "seed", "real_time_factor", "use_sim_time", "record",
            "namespace", "tour"} <= set(args)
    assert all(a.get("description") for a in args.values()), "every <arg> needs a description"
    assert args["gui"].get("default") == "false"
    setup = (repo / "ros_ws" / "src" / "katazuke_ros" / "setup.py").read_text()
    execs = {n.get("exec"): n for n in root.iter("node")}
    assert {"sim_bridge", "tour", "bag_recorder"} <= set(execs)
    for e, n in execs.items():
        assert f'"{e}"' in setup, f"{e} is not an executable of katazuke_ros"
        assert n.get("pkg") == "katazuke_ros"
    assert execs["tour"].get("on_exit") == "shutdown"
    used = {s for n in root.iter() for v in n.attrib.values() for s in _vars(v)}
    assert used <= set(args), f"undeclared launch args {used - set(args)}"


def _vars(text: str) -> list[str]:
    out, i = [], 0
    while (i := text.find("$(var ", i)) >= 0:
        j = text.index(")", i)
        out.append(text[i + 6:j].strip())
        i = j
    return out


def test_quaternion_helpers_roundtrip() -> None:
    from katazuke.geometry import matrix_to_quat, yaw_to_quat

    rng = np.random.default_rng(0)
    for _ in range(50):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        x, y, z, w = q
        R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                      [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                      [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
        back = np.array(matrix_to_quat(R))
        assert np.allclose(back, q * np.sign(w), atol=1e-9)
    yaw = 2.5
    qz = yaw_to_quat(yaw)
    assert math.isclose(2 * math.atan2(qz[2], qz[3]), yaw)


def test_optical_rotation_is_rep103() -> None:
    from katazuke_ros.sim_bridge import R_LINK_OPTICAL

    assert np.allclose(R_LINK_OPTICAL @ R_LINK_OPTICAL.T, np.eye(3))
    assert math.isclose(np.linalg.det(R_LINK_OPTICAL), 1.0)
    # optical z looks along the link's x; optical x is the link's -y (right); y is -z (down)
    assert np.allclose(R_LINK_OPTICAL[:, 2], [1, 0, 0])
    assert np.allclose(R_LINK_OPTICAL[:, 0], [0, -1, 0])
    assert np.allclose(R_LINK_OPTICAL[:, 1], [0, 0, -1])


@pytest.mark.parametrize("yaw0,face", [(0.0, True), (2.0, True), (-1.0, False)])
def test_pure_pursuit_follows_the_path_to_the_goal(yaw0: float, face: bool) -> None:
    """Integrate an ideal holonomic base under the follower: it ends at the goal, close to
    the path all along."""
    from katazuke_ros.tour_node import PurePursuit, TourConfig

    cfg = TourConfig(face_travel_direction=face)
    path = np.vstack([[0.0, 0.0], np.asarray(cfg.waypoints).reshape(-1, 2)])
    pp = PurePursuit(path, cfg)
    x, y, yaw, dt = 0.0, 0.0, yaw0, 1.0 / 30
    max_dev = 0.0
    for step in range(int(200 / dt)):
        (vx, vy, wz), done = pp.command(x, y, yaw)
        if done:
            break
        assert math.hypot(vx, vy) <= cfg.speed + 1e-9 and abs(wz) <= cfg.max_angular_speed + 1e-9
        c, s = math.cos(yaw), math.sin(yaw)
        x, y, yaw = x + (c * vx - s * vy) * dt, y + (s * vx + c * vy) * dt, yaw + wz * dt
        d = min(_seg_dist(np.array([x, y]), path[i], path[i + 1]) for i in range(len(path) - 1))
        max_dev = max(max_dev, d)
    assert done, f"not done after {step * dt:.0f} s at ({x:.2f}, {y:.2f})"
    assert math.hypot(x - path[-1, 0], y - path[-1, 1]) < cfg.goal_tolerance_m
    assert max_dev < cfg.lookahead_m, max_dev
    assert step * dt < 2.0 * pp.length / cfg.speed


def _seg_dist(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    f = float(np.clip(np.dot(p - a, b - a) / max(np.dot(b - a, b - a), 1e-12), 0, 1))
    return float(np.linalg.norm(a + f * (b - a) - p))


def test_tour_config_rejects_odd_waypoints() -> None:
    from katazuke.errors import ConfigError
    from katazuke_ros.tour_node import TourConfig

    with pytest.raises(ConfigError, match="pairs"):
        TourConfig(waypoints=(1.0, 2.0, 3.0))


def test_a_command_arriving_during_a_step_is_not_accepted_unchecked() -> None:
    """The race the version counter closes: step k used candidate A; B arrived meanwhile.
    A becomes accepted, B stays a candidate for step k + 1, and if the simulator refuses
    B the accepted target is still A."""
    from katazuke_ros.sim_commands import Targets

    t = Targets()
    t.propose(1.0, "gripper/command")
    value, version = t.current()
    assert value == 1.0
    t.propose(2.0, "gripper/command")          # arrives while step k runs
    assert t.settle(value, version, ok=True) is None
    assert t.accepted == 1.0 and t.candidate == 2.0
    value, version = t.current()
    assert value == 2.0
    assert t.settle(value, version, ok=False) == "gripper/command"
    assert t.accepted == 1.0 and t.candidate is None
    assert t.current() == (1.0, None)
    assert t.settle(1.0, None, ok=False) is None     # nothing new was stepped: nothing dropped
