"""`katazuke launch` with the real talker/listener nodes, observed with rclpy.

Checks: args + include + namespace + remap + params reach the running nodes; SIGINT
stops everything (no orphans); respawn after kill -9 brings up a new publishing
process; a required node (on_exit="shutdown") tears the launch down with a failure
status.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from katazuke.launcher.supervisor import process_alive as alive
from katazuke.ros.probe import Probe
from katazuke.testing import finish_process, start_process, wait_for

pytestmark = [pytest.mark.ros, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            s = fh.read().decode()
    except OSError:
        return None
    return s[s.rfind(")") + 2:].split()


def children(ppid: int) -> dict[int, str]:
    """pid -> cmdline of the live children of ``ppid``."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _stat(int(d))
            if st is not None and st[0] != "Z" and int(st[1]) == ppid:
                try:
                    out[int(d)] = open(f"/proc/{d}/cmdline", "rb").read().replace(b"\0", b" ").decode()
                except OSError:
                    pass
    return out


def nodes(launcher: subprocess.Popen) -> dict[int, str]:
    """pid -> cmdline of the launched processes (each is its guard's child; the guards are
    the launcher's children, see :mod:`katazuke.launcher.supervisor`)."""
    return {pid: cmd for guard in children(launcher.pid) for pid, cmd in children(guard).items()}


def pid_of(launcher: subprocess.Popen, node: str) -> int | None:
    for pid, cmd in nodes(launcher).items():
        if f"__node:={node} " in cmd + " ":
            return pid
    return None


class Echo:
    """The std_msgs/String texts received on ``topic``, over :class:`katazuke.ros.probe.Probe`."""

    def __init__(self, topic: str) -> None:
        from std_msgs.msg import String

        self.probe = Probe("launch_test_probe")
        self._received = self.probe.collect(topic, String, "events")

    @property
    def msgs(self) -> list[str]:
        return [m.data for _, m in self._received]

    def spin(self) -> None:
        self.probe.spin_once(0.05)

    def close(self) -> None:
        self.probe.close()

    def wait(self, cond, timeout: float) -> bool:
        return self.probe.wait_for(lambda: cond(self.msgs), timeout)


def start(path: Path, *args: str) -> subprocess.Popen:
    """Start `katazuke launch` with its output going to a file, not a pipe (see
    :func:`katazuke.testing.start_process`: a full pipe once deadlocked the launcher and
    its nodes, which looked like DDS losing messages)."""
    cmd = [sys.executable, "-P", "-m", "katazuke.cli", "launch", str(path),
           "--domain-id", os.environ["ROS_DOMAIN_ID"], "--shutdown-timeout", "5", *args]
    return start_process(cmd)


def stop(launcher: subprocess.Popen) -> str:
    """Kill the launcher if it still runs; return everything it printed."""
    return finish_process(launcher, signal.SIGKILL)


def test_demo_launch_namespaced_remapped_params_then_sigint(tmp_path):
    ns = f"kz{os.getpid()}"
    launcher = start(REPO / "launch" / "demo_talker_listener.launch.xml", f"namespace:={ns}",
                     "message:=from_launch_arg", "status_topic:=chatter", "--log-dir", str(tmp_path))
    echo = Echo(f"/{ns}/echo")
    try:
        # listener formats "<task_id>:<message>:<state>"; the message is the <param> that
        # overrides demo.yaml, the topic pair is remapped status -> chatter in /ns.
        assert echo.wait(lambda m: any(x.endswith(":from_launch_arg:2") for x in m), 60.0), stop(launcher)
        kids = nodes(launcher)
        assert len(kids) == 2 and len(children(launcher.pid)) == 2
        assert all(f"__ns:=/{ns}" in c for c in kids.values())
        launcher.send_signal(signal.SIGINT)
        assert wait_for(lambda: not any(alive(pid) for pid in kids), 5.0), \
            f"still alive 5 s after SIGINT: {[p for p in kids if alive(p)]}"
        assert launcher.wait(timeout=5) == 0
    finally:
        echo.close()
        out = stop(launcher)
    assert "[launch] shutting down: received SIGINT" in out


def test_respawn_then_required_node_exit(tmp_path):
    ns = f"kzr{os.getpid()}"
    launcher = start(DATA / "ros_respawn.launch.xml", f"namespace:={ns}", "--log-dir", str(tmp_path))
    echo = Echo(f"/{ns}/echo")
    try:
        assert echo.wait(lambda m: any(":respawned:" in x for x in m), 60.0), stop(launcher)
        talker = pid_of(launcher, "talker")
        listener = pid_of(launcher, "listener")
        assert talker and listener
        os.kill(talker, signal.SIGKILL)
        seen = len(echo.msgs)
        new: list[int] = []
        assert wait_for(lambda: (new.append(pid_of(launcher, "talker") or 0) or new[-1] not in (0, talker)),
                        20.0, spin=echo.spin)
        assert alive(new[-1]) and not alive(talker)
        # The old talker is dead, so once more echoes arrive than could have been queued
        # from it (the listener's reliable depth is 10), the new process is publishing.
        # (Comparing task ids does not work: the new talker counts from 1, but DDS
        # discovery may take seconds, so its first delivered id can exceed the old one's.)
        after_respawn = len(echo.msgs)
        assert echo.wait(lambda m: len(m) >= after_respawn + 20, 60.0), stop(launcher)
        assert len(echo.msgs) > seen
        os.kill(listener, signal.SIGKILL)            # the required node dies
        assert launcher.wait(timeout=15) == 1        # failure status
        for pid in (new[-1], listener):
            assert wait_for(lambda: not alive(pid), 5.0), f"orphan pid {pid}"
    finally:
        echo.close()
        out = stop(launcher)
    assert "respawning talker in 0.20 s" in out
    assert "required process listener exited with code -9" in out


def test_sigkilled_launcher_takes_an_idle_node_down(tmp_path):
    """An idle rclpy node ignores SIGTERM until its executor wakes; the launcher's death
    must still end it (its guard's SIGKILL on the launcher's death signal)."""
    ns = f"kzi{os.getpid()}"
    launcher = start(DATA / "ros_idle.launch.xml", f"namespace:={ns}", "--log-dir", str(tmp_path))
    probe = Probe("launch_test_graph_probe")
    node = None
    try:
        assert wait_for(lambda: ("idle_listener", f"/{ns}") in probe.node.get_node_names_and_namespaces(),
                        60.0), stop(launcher)
        node = pid_of(launcher, "idle_listener")
        assert node is not None
        launcher.kill()
        launcher.wait(timeout=10)
        assert wait_for(lambda: not alive(node), 5.0), f"orphan pid {node}"
    finally:
        probe.close()
        stop(launcher)
        if node is not None and alive(node):  # never leave an orphan behind, even on failure
            os.kill(node, signal.SIGKILL)
