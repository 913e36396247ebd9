"""launch/control_sim.launch.xml for real: sim_bridge + controller (GPC) in their own
processes, a path to follow while /sim/disturbance/base_force pushes the base."""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from katazuke.testing import wait_for

STARTUP_TIMEOUT = 90.0   # two processes importing rclpy + pybullet on a loaded 2-core host
DRIVE_TIMEOUT = 60.0


class Observer:
    """Test node: ground truth, diagnostics, and publishers of path and disturbances."""

    def __init__(self, domain_id: int) -> None:
        import rclpy
        from geometry_msgs.msg import PoseStamped, Vector3
        from katazuke_interfaces.msg import ControllerDiagnostics
        from nav_msgs.msg import Odometry, Path as PathMsg
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from std_msgs.msg import Float64, String

        from katazuke_ros import qos

        self.ctx = Context()
        rclpy.init(context=self.ctx, domain_id=domain_id)
        self.node = n = rclpy.create_node("control_sim_observer", context=self.ctx)
        self.lock = threading.Lock()
        self.gt: list[Any] = []
        self.odom: list[Any] = []
        self.diags: list[Any] = []
        self.rejected: list[str] = []

        def keep(lst: list[Any]):
            def cb(m: Any) -> None:
                with self.lock:
                    lst.append(m)
                    if len(lst) > 500:
                        del lst[:250]
            return cb

        n.create_subscription(PoseStamped, "/sim/ground_truth/base_pose", keep(self.gt), qos.STATE)
        n.create_subscription(Odometry, "/odom", keep(self.odom), qos.STATE)
        n.create_subscription(ControllerDiagnostics, "/controller/diagnostics", keep(self.diags),
                              qos.EVENTS)
        n.create_subscription(String, "/sim_bridge/rejected",
                              lambda m: self.rejected.append(m.data), qos.EVENTS)
        self.path_pub = n.create_publisher(PathMsg, "/path", qos.COMMAND)
        self.force_pub = n.create_publisher(Vector3, "/sim/disturbance/base_force", qos.COMMAND)
        self.mu_pub = n.create_publisher(Float64, "/sim/friction", qos.COMMAND)
        self._Vector3, self._Float64 = Vector3, Float64
        self.ex = SingleThreadedExecutor(context=self.ctx)
        self.ex.add_node(n)
        self.thread = threading.Thread(target=self.ex.spin, daemon=True)
        self.thread.start()

    def last(self, lst: list[Any]) -> Any:
        with self.lock:
            return lst[-1] if lst else None

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

        msg = PathMsg()
        msg.header.frame_id = "odom"
        for x, y, yaw in points:
            ps = PoseStamped()
            ps.header.frame_id = "odom"
            ps.pose.position.x, ps.pose.position.y = float(x), float(y)
            ps.pose.orientation.z, ps.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
            msg.poses.append(ps)
        self.path_pub.publish(msg)

    def close(self) -> None:
        self.ex.shutdown(timeout_sec=5)
        self.thread.join(timeout=5)
        self.node.destroy_node()
        self.ctx.try_shutdown()


@pytest.mark.ros
@pytest.mark.sim
@pytest.mark.slow
def test_controller_follows_a_path_in_sim_while_pushed(repo: Path, tmp_path: Path) -> None:
    domain = int(os.environ.get("ROS_DOMAIN_ID", "0"))
    sim = yaml.safe_load((repo / "launch" / "params" / "sim.yaml").read_text())
    p = sim["sim_bridge"]["ros__parameters"]
    p.update(n_objects=[0, 0], camera_hz=1.0, ground_truth_hz=1.0)
    sim_params = tmp_path / "sim.yaml"
    sim_params.write_text(yaml.safe_dump({"sim_bridge": sim["sim_bridge"]}))
    katazuke = Path(sys.executable).with_name("katazuke")
    cmd = [str(katazuke), "launch", str(repo / "launch" / "control_sim.launch.xml"),
           "mode:=gpc", "real_time_factor:=1.0", f"sim_params_file:={sim_params}",
           f"control_params_file:={repo / 'launch' / 'params' / 'control.yaml'}",
           "--domain-id", str(domain), "--log-dir", str(tmp_path), "--shutdown-timeout", "5"]
    log = (tmp_path / "launch_stdout.txt").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    obs = Observer(domain)
    try:
        assert wait_for(lambda: obs.last(obs.gt) is not None and obs.last(obs.odom) is not None
                        or proc.poll() is not None, STARTUP_TIMEOUT), "no odometry/ground truth"
        assert proc.poll() is None, "the launch exited early: see launch_stdout.txt"
        x0, y0 = obs.gt_xy()
        # 1) the push topic reaches the simulator: with no goal the base drifts along -y
        def drifted() -> bool:  # resent until discovery completes; the bridge holds it
            obs.push(0.0, -30.0)
            time.sleep(0.05)
            return obs.gt_xy()[1] < y0 - 0.03
        assert wait_for(drifted, 30.0), f"a 30 N push did not move the base (y {obs.gt_xy()[1]} vs {y0})"
        obs.friction(0.4)
        # 2) a path towards -x; the controller must drive there against the push
        o = obs.last(obs.odom).pose.pose
        ox, oy = o.position.x, o.position.y
        yaw = 2.0 * math.atan2(o.orientation.z, o.orientation.w)
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
        if proc.poll() is None:  # the launcher stops its nodes on SIGINT (then escalates)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait(timeout=20)
        log.close()


def test_launch_file_declares_described_args_and_registered_nodes(repo: Path) -> None:
    import xml.etree.ElementTree as ET

    root = ET.parse(repo / "launch" / "control_sim.launch.xml").getroot()
    args = {a.get("name"): a for a in root.iter("arg")}
    assert {"mode", "seed", "real_time_factor", "sim_params_file", "control_params_file"} <= set(args)
    assert all(a.get("description") for a in args.values())
    assert args["mode"].get("default") == "lqr"
    setup = (repo / "ros_ws" / "src" / "katazuke_ros" / "setup.py").read_text()
    execs = {n.get("exec") for n in root.iter("node")}
    assert execs == {"sim_bridge", "controller"}
    assert all(f'"{e}"' in setup for e in execs)
    used = set()
    for n in root.iter():
        for v in n.attrib.values():
            i = 0
            while (i := v.find("$(var ", i)) >= 0:
                j = v.index(")", i)
                used.add(v[i + 6:j].strip())
                i = j
    assert used <= set(args), used - set(args)
