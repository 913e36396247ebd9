"""``katazuke bench launch``: launcher startup, clean shutdown and respawn latency.

Three measurements, all with the real ``katazuke_ros`` talker/listener nodes:

1. **Clean shutdown of a 6-node launch** (bar: median < 5 s): three copies of
   ``launch/demo_talker_listener.launch.xml`` in three namespaces. Each repeat starts
   ``katazuke launch`` in a subprocess, waits until every listener has printed a
   received message (all six nodes up and talking), sends SIGINT to the launcher and
   times until the launcher has exited (it exits only after reaping every child), then
   checks with /proc that no child survived. Startup time (launch -> all listeners
   talking) is recorded too.
2. **Peer, same run**: the same six node processes started directly (no launcher)
   and SIGINTed together: the floor any launcher's clean shutdown can reach.
3. **Respawn latency**: a talker with ``respawn="true" respawn_delay="0"`` next to a
   listener; the talker is SIGKILLed repeatedly and we time kill -> new pid and kill ->
   the listener receiving the new talker's first message. The launcher's scheduled
   backoff delay is subtracted to give the launcher's own overhead.

One warm-up repeat is discarded for 1. and 2.; figures are medians.
"""
from __future__ import annotations

import argparse
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from katazuke.benchio import median, write_results
from katazuke.errors import KatazukeError
from katazuke.rosenv import repo_root, workspace_install

_NAMESPACES = ("bench_a", "bench_b", "bench_c")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=5, help="measured repeats (after 1 warm-up)")
    parser.add_argument("--respawns", type=int, default=5, help="talker kills in the respawn test")
    parser.add_argument("--domain-id", type=int, default=None,
                        help="ROS_DOMAIN_ID for the benchmark's nodes (default: 150 + pid %% 80)")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds allowed for startup")
    parser.add_argument("--out", default=str(repo_root() / "docs" / "bench"))


class _Lines:
    """Collects a subprocess's output lines in a thread (so pipes never fill up)."""

    def __init__(self, stream) -> None:
        self.q: queue.Queue[tuple[float, str]] = queue.Queue()
        self.lines: list[tuple[float, str]] = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for line in iter(stream.readline, ""):
            self.q.put((time.monotonic(), line.rstrip("\n")))

    def wait_for(self, pred, timeout: float) -> tuple[float, str]:
        """Return (time, line) of the first new line matching ``pred``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                tail = "\n".join(l for _, l in self.lines[-30:])
                raise KatazukeError(f"benchmark timed out waiting for output; last lines:\n{tail}")
            try:
                t, line = self.q.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            self.lines.append((t, line))
            if pred(line):
                return t, line


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            s = fh.read().decode()
    except OSError:
        return False
    return s[s.rfind(")") + 2] != "Z"


def _children(ppid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as fh:
                s = fh.read().decode()
        except OSError:
            continue
        rest = s[s.rfind(")") + 2:].split()
        if rest[0] != "Z" and int(rest[1]) == ppid:
            out.append(int(d))
    return out


def _six_node_file(tmp: Path) -> Path:
    demo = repo_root() / "launch" / "demo_talker_listener.launch.xml"
    groups = "\n".join(
        f'  <group>\n    <include file="{demo}">\n      <arg name="namespace" value="{ns}"/>\n'
        f'      <arg name="message" value="bench"/>\n    </include>\n  </group>' for ns in _NAMESPACES)
    p = tmp / "six_nodes.launch.xml"
    p.write_text(f'<?xml version="1.0"?>\n<launch>\n{groups}\n</launch>\n')
    return p


def _respawn_file(tmp: Path) -> Path:
    p = tmp / "respawn.launch.xml"
    p.write_text("""<?xml version="1.0"?>
<launch>
  <push_ros_namespace namespace="bench_respawn"/>
  <node pkg="katazuke_ros" exec="talker" name="talker" respawn="true" respawn_delay="0">
    <param name="message" value="respawn"/>
    <param name="rate_hz" value="20.0"/>
  </node>
  <node pkg="katazuke_ros" exec="listener" name="listener" output="screen"/>
</launch>
""")
    return p


def _launch(path: Path, domain: int, log_dir: Path) -> tuple[subprocess.Popen, _Lines]:
    cmd = [sys.executable, "-P", "-m", "katazuke.cli", "launch", str(path), "--domain-id", str(domain),
           "--log-dir", str(log_dir)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    return p, _Lines(p.stdout)


_STEADY_ID = 100
_STATUS = re.compile(r"^\[(listener(?:-\d)?)\] .*status (\d+): ")


def _shutdown_run(path: Path, domain: int, log_dir: Path, timeout: float) -> dict:
    t0 = time.monotonic()
    launcher, out = _launch(path, domain, log_dir)
    try:
        talking: set[str] = set()

        def all_talking(line: str) -> bool:
            m = _STATUS.match(line)
            if m:
                talking.add(m.group(1))
            return len(talking) == len(_NAMESPACES)

        t_ready, _ = out.wait_for(all_talking, timeout)
        kids = _children(launcher.pid)
        if len(kids) != 2 * len(_NAMESPACES):
            raise KatazukeError(f"expected {2 * len(_NAMESPACES)} node processes, found {len(kids)}")
        t_sig = time.monotonic()
        launcher.send_signal(signal.SIGINT)
        rc = launcher.wait(timeout=60)
        t_exit = time.monotonic()
        orphans = [k for k in kids if _alive(k)]
        return {"startup_s": t_ready - t0, "shutdown_s": t_exit - t_sig, "rc": rc, "orphans": len(orphans)}
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()


def _peer_run(domain: int, timeout: float) -> dict:
    """The same six processes started directly, SIGINTed together."""
    from katazuke.rosenv import ros_environment

    env = ros_environment()
    env["ROS_DOMAIN_ID"] = str(domain)
    lib = workspace_install() / "lib" / "katazuke_ros"
    procs = []
    lines: list[_Lines] = []
    try:
        for ns in _NAMESPACES:
            for exe in ("talker", "listener"):
                cmd = [str(lib / exe), "--ros-args", "-r", f"__node:={exe}", "-r", f"__ns:=/peer_{ns}",
                       "-r", "status:=task_status"]
                p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
                procs.append(p)
                lines.append(_Lines(p.stdout))
        for reader in lines[1::2]:  # the listeners
            reader.wait_for(lambda line: "status " in line, timeout)
        t_sig = time.monotonic()
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            p.wait(timeout=60)
        return {"shutdown_s": time.monotonic() - t_sig, "codes": [p.returncode for p in procs]}
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def _respawn_run(path: Path, domain: int, log_dir: Path, kills: int, timeout: float, bar) -> list[dict]:
    launcher, out = _launch(path, domain, log_dir)
    results = []
    try:
        def status_id(line: str) -> int | None:
            m = _STATUS.match(line)
            return int(m.group(2)) if m else None

        for _ in range(kills):
            # the current talker has published for ~5 s (ids >= 100 at 20 Hz): steady
            out.wait_for(lambda line: (status_id(line) or 0) >= _STEADY_ID, timeout)
            talker = next(k for k in _children(launcher.pid)
                          if b"__node:=talker" in open(f"/proc/{k}/cmdline", "rb").read())
            t_kill = time.monotonic()
            os.kill(talker, signal.SIGKILL)
            _, sched = out.wait_for(lambda line: "respawning talker in" in line, 30)
            delay = float(re.search(r"in ([0-9.]+) s", sched).group(1))
            t_start, _ = out.wait_for(lambda line: "started talker (pid" in line, 30)
            # task ids restart at 1 in the new process; the old one had reached >= 100, and
            # the listener may miss the new talker's first messages until DDS discovery
            t_msg, _ = out.wait_for(lambda line: status_id(line) is not None
                                    and status_id(line) < _STEADY_ID, timeout)
            results.append({"scheduled_delay_s": delay, "kill_to_new_pid_s": t_start - t_kill,
                            "kill_to_first_message_s": t_msg - t_kill,
                            "launcher_overhead_s": t_start - t_kill - delay})
            bar.update(1)
        return results
    finally:
        if launcher.poll() is None:
            launcher.send_signal(signal.SIGINT)
            try:
                launcher.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(launcher.pid, signal.SIGKILL)
                launcher.wait()


def main(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.repeats < 1 or args.respawns < 1:
        raise KatazukeError("--repeats and --respawns must be >= 1")
    domain = args.domain_id if args.domain_id is not None else 150 + os.getpid() % 80
    tmp = Path(tempfile.mkdtemp(prefix="katazuke_bench_launch_"))
    six, resp = _six_node_file(tmp), _respawn_file(tmp)
    runs, peers = [], []
    with tqdm(total=2 * (args.repeats + 1) + args.respawns, desc="bench launch", unit="run") as bar:
        for i in range(args.repeats + 1):
            r = _shutdown_run(six, domain, tmp / "log", args.timeout)
            bar.update(1)
            p = _peer_run(domain, args.timeout)
            bar.update(1)
            if i > 0:  # the first pair is the warm-up
                runs.append(r)
                peers.append(p)
        respawns = _respawn_run(resp, domain, tmp / "log", args.respawns, args.timeout, bar)
    shutdown = [r["shutdown_s"] for r in runs]
    startup = [r["startup_s"] for r in runs]
    peer = [p["shutdown_s"] for p in peers]
    orphans = sum(r["orphans"] for r in runs)
    rcs = sorted({r["rc"] for r in runs})
    first = respawns[0]
    results = {
        "nodes": 2 * len(_NAMESPACES), "repeats": args.repeats,
        "shutdown_s": shutdown, "shutdown_median_s": median(shutdown),
        "startup_s": startup, "startup_median_s": median(startup),
        "peer_direct_sigint_shutdown_s": peer, "peer_direct_sigint_shutdown_median_s": median(peer),
        "launcher_exit_codes": rcs, "orphans": orphans,
        "respawn": respawns,
        "respawn_overhead_median_s": median(r["launcher_overhead_s"] for r in respawns),
        "respawn_first_kill_to_new_pid_s": first["kill_to_new_pid_s"],
        "respawn_first_kill_to_first_message_s": first["kill_to_first_message_s"],
        "bar_shutdown_lt_5s_met": median(shutdown) < 5.0 and orphans == 0,
    }
    met = "met" if results["bar_shutdown_lt_5s_met"] else "NOT met"
    rows = "\n".join(
        f"| {i + 1} | {r['scheduled_delay_s']:.2f} | {r['kill_to_new_pid_s']:.3f} | "
        f"{r['launcher_overhead_s']:.3f} | {r['kill_to_first_message_s']:.2f} |" for i, r in enumerate(respawns))
    cmd = "katazuke bench launch" + (f" --repeats {args.repeats}" if args.repeats != 5 else "")
    md = f"""## Launcher (`katazuke launch`)

Six real nodes (3 x talker + listener from `launch/demo_talker_listener.launch.xml`, one
namespace each). Median of {args.repeats} runs after 1 warm-up.

| measurement | median | all runs |
|---|---|---|
| clean shutdown: SIGINT to the launcher -> launcher exited, all 6 children reaped | **{median(shutdown):.2f} s** | {", ".join(f"{x:.2f}" for x in shutdown)} |
| peer: the same 6 processes started directly, SIGINT to each -> all exited | {median(peer):.2f} s | {", ".join(f"{x:.2f}" for x in peer)} |
| startup: launch -> every listener has received a message | {median(startup):.2f} s | {", ".join(f"{x:.2f}" for x in startup)} |

Launcher exit codes: {rcs}; processes left alive after shutdown: {orphans}.

Respawn (`respawn="true" respawn_delay="0"`, talker SIGKILLed once it has published ~5 s;
quick repeated crashes double the delay from 0.1 s, so the scheduled delay grows):

| kill | scheduled delay [s] | kill -> new pid [s] | launcher overhead [s] | kill -> listener got new talker's message [s] |
|---|---|---|---|---|
{rows}

Median launcher overhead (kill -> new pid minus scheduled delay):
{results['respawn_overhead_median_s'] * 1000:.0f} ms. The kill -> message time is dominated by the
Python node's own start-up (imports, rclpy init) and DDS discovery between the new talker and
the listener (the listener can miss the first messages until it has matched the new publisher).

Command: `{cmd}`

Bar: clean shutdown of a 6-node launch < 5 s (median of 5), no orphans: **{met}**
({median(shutdown):.2f} s, {orphans} orphans).
"""
    write_results("launch", results, md, args.out, packages=("rclpy", "pyyaml"))
    print(md)
    return 0 if results["bar_shutdown_lt_5s_met"] else 1
