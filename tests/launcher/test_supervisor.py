"""Supervisor behaviour with plain processes (no ROS): teardown, escalation, respawn,
required processes, output prefixes, no orphans."""
from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from katazuke.launcher import Supervisor, load_launch, process_group_members
from katazuke.launcher.supervisor import process_alive as alive
from katazuke.testing import wait_for

REPO = Path(__file__).resolve().parents[2]


def graph_from(tmp_path: Path, env: dict, body: str):
    p = tmp_path / "sup.launch.xml"
    p.write_text(f'<?xml version="1.0"?>\n<launch>\n{body}\n</launch>\n')
    return load_launch(p, {}, env=env)


def proc(label: str, mode: str, extra: str = "") -> str:
    return f'<executable cmd="$(env KZ_PY) $(env KZ_PROC) {mode}" name="{label}" output="screen" {extra}/>'


class Running:
    """A supervisor running in a background thread, with its output captured."""

    def __init__(self, graph, **kw) -> None:
        self.out, self.err = io.StringIO(), io.StringIO()
        self.sup = Supervisor(graph, stdout=self.out, stderr=self.err, **kw)
        self.rc: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.rc = self.sup.run(handle_signals=False)

    def ready(self, label: str, timeout: float = 15.0, not_pid: int = 0) -> int:
        """Wait for 'ready PID' from the current instance of ``label``; return its pid."""
        def cond() -> bool:
            pid = self.sup.pids().get(label)
            return pid not in (None, not_pid) and f"[{label}] ready {pid}" in self.out.getvalue()
        assert wait_for(cond, timeout), self.err.getvalue()
        return self.sup.pids()[label]

    def stop(self, timeout: float = 15.0) -> float:
        t0 = time.monotonic()
        self.sup.request_shutdown("test")
        self.thread.join(timeout)
        assert not self.thread.is_alive()
        return time.monotonic() - t0


def test_shutdown_escalates_and_leaves_no_orphans(tmp_path, fake_env):
    g = graph_from(tmp_path, fake_env, "\n".join([
        proc("polite", "sleep"), proc("needs_term", "ignore-int"), proc("stubborn", "stubborn"),
        proc("parent", "grandchild")]))
    r = Running(g, shutdown_timeout=0.5)
    pids = {label: r.ready(label) for label in ("polite", "needs_term", "stubborn", "parent")}
    grandchild = int(re.search(r"\[parent\] grandchild (\d+)", r.out.getvalue()).group(1))
    assert alive(grandchild)
    elapsed = r.stop()
    assert r.rc == 0
    codes = {e.label: e.code for e in r.sup.events if e.kind == "exit"}
    assert codes["polite"] == 0                      # SIGINT was enough
    assert codes["needs_term"] == 0                  # exited on SIGTERM (its handler)
    assert codes["stubborn"] == -signal.SIGKILL      # only SIGKILL worked
    assert 0.9 < elapsed < 5.0                       # two 0.5 s stages, then SIGKILL
    for pid in [*pids.values(), grandchild]:
        assert wait_for(lambda: not alive(pid), 3.0), f"pid {pid} survived"
    for pgid in pids.values():
        assert process_group_members(pgid) == []
    assert "escalating to SIGTERM" in r.err.getvalue() and "escalating to SIGKILL" in r.err.getvalue()


def test_respawn_after_kill_with_backoff(tmp_path, fake_env):
    g = graph_from(tmp_path, fake_env, proc("worker", "sleep", 'respawn="true" respawn_delay="0.2"'))
    r = Running(g, shutdown_timeout=2.0)
    first = r.ready("worker")
    os.kill(first, signal.SIGKILL)
    second = r.ready("worker", not_pid=first)
    assert second != first and not alive(first)
    os.kill(second, signal.SIGKILL)
    third = r.ready("worker", not_pid=second)
    assert third not in (first, second)
    r.stop()
    delays = [e.delay for e in r.sup.events if e.kind == "respawn"]
    assert delays == pytest.approx([0.2, 0.4])      # quick crashes double the delay
    assert "respawning worker in 0.20 s" in r.err.getvalue()
    assert not alive(third)


def test_respawn_backoff_doubles_up_to_the_cap(tmp_path, fake_env):
    """Quick crashes double the delay from ``respawn_delay`` and stop growing at the cap."""
    g = graph_from(tmp_path, fake_env,
                   proc("crasher", "exit 3 0", 'respawn="true" respawn_delay="0.1" respawn_max_retries="6"'))
    r = Running(g, backoff_cap_s=0.5)
    r.thread.join(30.0)
    assert not r.thread.is_alive() and r.rc == 0
    delays = [e.delay for e in r.sup.events if e.kind == "respawn"]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5, 0.5])
    assert [e.kind for e in r.sup.events].count("start") == 7


def test_respawn_max_retries(tmp_path, fake_env):
    g = graph_from(tmp_path, fake_env,
                   proc("flaky", "exit 3 0", 'respawn="true" respawn_max_retries="2"'))
    r = Running(g)
    r.thread.join(20.0)
    assert r.rc == 0
    assert [e.kind for e in r.sup.events].count("start") == 3
    assert "all processes have finished" in r.err.getvalue()


@pytest.mark.parametrize("code,rc", [(3, 1), (0, 0)])
def test_required_process_exit_tears_down(tmp_path, fake_env, code, rc):
    g = graph_from(tmp_path, fake_env, "\n".join([
        proc("bystander", "sleep"), proc("required", f"exit {code} 0.5", 'on_exit="shutdown"')]))
    r = Running(g, shutdown_timeout=2.0)
    bystander = r.ready("bystander")
    r.thread.join(20.0)
    assert not r.thread.is_alive() and r.rc == rc
    assert not alive(bystander)
    assert "required process required exited with code" in r.err.getvalue()


def test_output_prefix_and_log_mode(tmp_path, fake_env):
    g = graph_from(tmp_path, fake_env, "\n".join([
        '<executable cmd="$(env KZ_PY) $(env KZ_PROC) print shown" name="scr" output="screen"/>',
        '<executable cmd="$(env KZ_PY) $(env KZ_PROC) print hidden" name="lg"/>']))
    log = tmp_path / "logs" / "launch.log"
    r = Running(g, log_file=log)
    r.ready("scr")
    assert wait_for(lambda: "[lg] err hidden" in r.err.getvalue(), 10.0)
    r.stop()
    assert "[scr] shown\n" in r.out.getvalue() and "[scr] err shown" in r.err.getvalue()
    assert "hidden" not in r.out.getvalue()         # output="log": stdout only to the log file
    text = log.read_text()
    assert "[lg] hidden" in text and "[scr] shown" in text


def launcher_cmd(path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-P", "-m", "katazuke.cli", "launch", str(path), *extra]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_launcher_killed_takes_children_down(tmp_path, fake_env, sig):
    p = tmp_path / "k.launch.xml"
    p.write_text('<launch>\n' + proc("a", "sleep") + "\n" + proc("b", "ignore-int") + "\n</launch>\n")
    env = dict(os.environ, KZ_PY=fake_env["KZ_PY"], KZ_PROC=fake_env["KZ_PROC"])
    launcher = subprocess.Popen(launcher_cmd(p, "--log-dir", str(tmp_path / "log"),
                                             "--shutdown-timeout", "1"),
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        kids: list[int] = []

        def children() -> bool:
            kids[:] = [int(d) for d in os.listdir("/proc") if d.isdigit() and _ppid(int(d)) == launcher.pid]
            return len(kids) == 2
        assert wait_for(children, 20.0)

        def both_ready() -> bool:  # their signal handlers are installed once they print
            logs = list((tmp_path / "log").glob("*/launch.log"))
            return bool(logs) and logs[0].read_text().count("] ready ") == 2
        assert wait_for(both_ready, 20.0)
        # the launcher's children are the guards; the processes are their children
        kids += [int(d) for g in list(kids) for d in os.listdir("/proc") if d.isdigit() and _ppid(int(d)) == g]
        assert len(kids) == 4
        launcher.send_signal(sig)
        rc = launcher.wait(10.0)
        if sig == signal.SIGTERM:
            assert rc == 0
        for pid in kids:
            assert wait_for(lambda: not alive(pid), 5.0), f"orphan {pid} after {sig.name}"
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode()
    except OSError:
        return -1
    return int(stat[stat.rfind(")") + 2:].split()[1])


def test_print_resolves_without_starting(tmp_path):
    env = dict(os.environ)
    out = subprocess.run(launcher_cmd(REPO / "launch" / "demo_talker_listener.launch.xml", "--print",
                                      "namespace:=r7", "message:=yo"),
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "__ns:=/r7" in out.stdout and "namespace: /r7" in out.stdout
    assert "message: yo" in out.stdout and "status:=task_status" in out.stdout
    bad = subprocess.run(launcher_cmd(REPO / "launch" / "demo_talker_listener.launch.xml", "--print",
                                      "with_listener:=perhaps"),
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert re.search(r"demo_talker_listener\.launch\.xml:\d+: 'if' must be true/false", bad.stderr)


def test_second_shutdown_request_escalates_at_once(tmp_path, fake_env):
    g = graph_from(tmp_path, fake_env, proc("needs_term", "ignore-int"))
    r = Running(g, shutdown_timeout=30.0)
    pid = r.ready("needs_term")
    t0 = time.monotonic()
    r.sup.request_shutdown("first Ctrl-C")   # SIGINT: ignored by the process
    assert wait_for(lambda: "shutting down" in r.err.getvalue(), 5.0)
    r.sup.request_shutdown("second Ctrl-C")  # skips the 30 s wait: SIGTERM now
    r.thread.join(10.0)
    assert not r.thread.is_alive() and time.monotonic() - t0 < 10.0
    assert "escalating to SIGTERM" in r.err.getvalue() and not alive(pid)
