"""launch/control_sim.launch.xml for real: sim_bridge + controller (GPC) in their own
processes, a path to follow while /sim/disturbance/base_force pushes the base."""
from __future__ import annotations

import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from katazuke.geometry import yaw_from_quaternion
from katazuke.testing import finish_process, start_process, wait_for

STARTUP_TIMEOUT = 90.0   # two processes importing rclpy + pybullet on a loaded 2-core host
DRIVE_TIMEOUT = 60.0


class Observer:
    """Test side of the graph on :class:`katazuke.ros.probe.Probe`: ground truth, odometry,
    diagnostics and rejections in; path and disturbances out."""

    def __init__(self) -> None:
        from geometry_msgs.msg import PoseStamped, Vector3
        from katazuke_interfaces.msg import ControllerDiagnostics
        from nav_msgs.msg import Odometry, Path as PathMsg
        from std_msgs.msg import Float64, String

        from katazuke.ros.probe import Probe

        self.probe = p = Probe("control_sim_observer")  # domain from ROS_DOMAIN_ID
        self.gt = p.collect("/sim/ground_truth/base_pose", PoseStamped, "state")
        self.odom = p.collect("/odom", Odometry, "state")
        self.diags = p.collect("/controller/diagnostics", ControllerDiagnostics, "events")
        self._rejected = p.collect("/sim_bridge/rejected", String, "events")
        self.path_pub = p.publisher("/path", PathMsg, "command")
        self.force_pub = p.publisher("/sim/disturbance/base_force", Vector3, "command")
        self.mu_pub = p.publisher("/sim/friction", Float64, "command")
        self._Vector3, self._Float64 = Vector3, Float64
        p.spin_in_background()

    @property
    def rejected(self) -> list[str]:
        return [m.data for _, m in list(self._rejected)]

    @staticmethod
    def last(lst: list[tuple[float, Any]]) -> Any:
        return lst[-1][1] if lst else None

    def gt_xy(self) -> tuple[float, float]:
        p = self.last(self.gt).pose.position
        return p.x, p.y

    def push(self, fx: float, fy: float) -> None:
        self.force_pub.publish(self._Vector3(x=float(fx), y=float(fy), z=0.0))

    def friction(self, mu: float) -> None:
        self.mu_pub.publish(self._Float64(data=float(mu)))

    def path(self, points: list[tuple[float, float, float]]) -> None:
        from geometry_msgs.msg import PoseStamped
        from nav_msgs.msg import Path as PathMsg

        from katazuke.geometry import yaw_to_quat

        msg = PathMsg()
        msg.header.frame_id = "odom"
        for x, y, yaw in points:
            ps = PoseStamped()
            ps.header.frame_id = "odom"
            ps.pose.position.x, ps.pose.position.y = float(x), float(y)
            q = yaw_to_quat(yaw)
            o = ps.pose.orientation
            o.x, o.y, o.z, o.w = (float(v) for v in q)
            msg.poses.append(ps)
        self.path_pub.publish(msg)

    def close(self) -> None:
        self.probe.close()


@pytest.mark.ros
@pytest.mark.sim
@pytest.mark.slow
def test_controller_follows_a_path_in_sim_while_pushed(repo: Path, tmp_path: Path) -> None:
    domain = int(os.environ.get("ROS_DOMAIN_ID", "0"))
    sim = yaml.safe_load((repo / "launch" / "params" / "sim.yaml").read_text())
    p = sim["sim_bridge"]["ros__parameters"]
    p.update(camera_hz=1.0, ground_truth_hz=1.0)
    p.setdefault("sim", {})["n_objects"] = [0, 0]
    sim_params = tmp_path / "sim.yaml"
    sim_params.write_text(yaml.safe_dump({"sim_bridge": sim["sim_bridge"]}))
    katazuke = Path(sys.executable).with_name("katazuke")
    cmd = [str(katazuke), "launch", str(repo / "launch" / "control_sim.launch.xml"),
           "mode:=gpc", "real_time_factor:=1.0", f"sim_params_file:={sim_params}",
           f"control_params_file:={repo / 'launch' / 'params' / 'control.yaml'}",
           "--domain-id", str(domain), "--log-dir", str(tmp_path), "--shutdown-timeout", "5"]
    proc = start_process(cmd)
    obs = Observer()
    try:
        assert wait_for(lambda: obs.last(obs.gt) is not None and obs.last(obs.odom) is not None
                        or proc.poll() is not None, STARTUP_TIMEOUT), "no odometry/ground truth"
        assert proc.poll() is None, "the launch exited early: see launch_stdout.txt in the test's tmp_path"
        x0, y0 = obs.gt_xy()
        # 1) the push topic reaches the simulator: with no goal the base drifts along -y
        def drifted() -> bool:  # resent every poll until discovery completes; the bridge holds it
            obs.push(0.0, -30.0)
            return obs.gt_xy()[1] < y0 - 0.03
        assert wait_for(drifted, 30.0, poll=0.05), \
            f"a 30 N push did not move the base (y {obs.gt_xy()[1]} vs {y0})"
        obs.friction(0.4)
        # 2) a path towards -x; the controller must drive there against the push
        o = obs.last(obs.odom).pose.pose
        ox, oy = o.position.x, o.position.y
        yaw = yaw_from_quaternion(o.orientation.x, o.orientation.y, o.orientation.z, o.orientation.w)
        goal = (ox - 0.8, oy + 0.05)
        start_dist = math.dist(obs.gt_xy(), goal)

        sent = [-math.inf]

        def has_diag() -> bool:  # resend (each resend restarts the path) until it is taken
            if obs.last(obs.diags) is not None:
                return True
            if time.monotonic() - sent[0] > 1.0:
                obs.path([(ox - 0.4, oy, yaw), (goal[0], goal[1], yaw)])
                sent[0] = time.monotonic()
            return False
        assert wait_for(has_diag, 30.0), "no controller/diagnostics after publishing the path"
        assert wait_for(lambda: math.dist(obs.gt_xy(), goal) < 0.12, DRIVE_TIMEOUT), \
            f"base did not reach the goal: ground truth {obs.gt_xy()}, goal {goal}"
        assert start_dist > 0.7
        d = obs.last(obs.diags)
        assert d.requested_mode == "gpc" and d.header.frame_id == "base"
        assert math.isfinite(d.disturbance_norm) and math.isfinite(d.tracking_error)
        assert not any("sim/" in r for r in obs.rejected), obs.rejected
        # 3) bad disturbance inputs are rejected (announced), the bridge keeps running
        obs.push(float("nan"), 0.0)
        obs.friction(5.0)
        assert wait_for(lambda: {r.split(":")[0] for r in obs.rejected}
                        >= {"sim/disturbance/base_force", "sim/friction"}, 15.0), obs.rejected
        assert proc.poll() is None
    finally:
        obs.close()
        # the launcher stops its nodes on SIGINT (and escalates itself); SIGKILL after 30 s
        (tmp_path / "launch_stdout.txt").write_text(finish_process(proc, signal.SIGINT, 30.0))


def test_launch_file_declares_described_args_and_registered_nodes(repo: Path) -> None:
    import xml.etree.ElementTree as ET

    from katazuke.launcher import load_launch

    path = repo / "launch" / "control_sim.launch.xml"
    root = ET.parse(path).getroot()
    args = {a.get("name"): a for a in root.iter("arg")}
    assert {"mode", "seed", "real_time_factor", "sim_params_file", "control_params_file"} <= set(args)
    assert all(a.get("description") for a in args.values())
    assert args["mode"].get("default") == "lqr"
    setup = (repo / "ros_ws" / "src" / "katazuke_ros" / "setup.py").read_text()
    execs = {n.get("exec") for n in root.iter("node")}
    assert execs == {"sim_bridge", "controller"}
    assert all(f'"{e}"' in setup for e in execs)
    # the launcher validates the file: every $(var ...) is declared, every attribute known
    graph = load_launch(path, {})
    assert len(graph.processes) == 2 and set(graph.arguments) == set(args)
