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
3. **kill -9 of the launcher** (bar: 0 processes of the tree alive 2 s later): a talker and a
   listener next to three ``<executable>`` shells that leave grandchildren (``sh -c 'a & b'``,
   ``sh -c 'a & wait'`` and a ``setsid`` daemon reparented while the launcher runs). Every
   process carries a unique environment marker, so survivors are found wherever they were
   reparented. The launcher is SIGKILLed once everything is up; we count the tree's
   processes alive 2 s later and time until the last one is gone.
4. **Respawn latency**: a talker with ``respawn="true" respawn_delay="0"`` next to a
   listener; the talker is SIGKILLed repeatedly and we time kill -> new pid and kill ->
   the listener receiving the new talker's first message. The launcher's scheduled
   backoff delay is subtracted to give the launcher's own overhead.

One warm-up repeat is discarded for 1. and 2.; figures are medians.

:func:`run` measures and returns a JSON-able dict, :func:`markdown` renders it, and
:data:`BARS` is the one table of bars both read. Every process is started and stopped with
:mod:`katazuke.testing` (output to a file, read live here by :class:`_Lines`).
"""
from __future__ import annotations

import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from katazuke.bench.harness import Bar, evaluate_bars, median
from katazuke.config import dataclass, field
from katazuke.errors import ConfigError, KatazukeError
from katazuke.launcher.supervisor import (child_processes, describe_process, descendants,
                                          process_alive, processes_with_env)
from katazuke.rosenv import repo_root, workspace_install
from katazuke.testing import finish_process, start_process

__all__ = ["LaunchBenchConfig", "BARS", "run", "markdown"]


def _node_processes(launcher_pid: int) -> list[int]:
    """The launched processes themselves: each is the child of a guard the launcher started
    (``katazuke/launcher/_guard.py``)."""
    return [pid for guard in child_processes(launcher_pid) for pid in child_processes(guard)]


_NAMESPACES = ("bench_a", "bench_b", "bench_c")

#: The launcher's bars.
BARS = (
    Bar("clean shutdown of a 6-node launch (SIGINT -> all reaped, median)",
        "shutdown_median_s", "<", 5.0, unit="s"),
    Bar("processes left alive after the clean shutdowns", "orphans", "==", 0),
    Bar("kill -9 of the launcher (nodes + <executable> shells with grandchildren): processes "
        "of the tree alive 2 s later, all runs", "kill9.alive_after_2s", "==", 0),
)

#: ``sleep`` arguments the kill -9 file's shells leave running, with their counts.
_KILL9_SLEEPS = {"3601": 2, "3602": 1, "3603": 1, "3604": 1}
_MARK = "KATAZUKE_BENCH_TREE"


@dataclass(frozen=True)
class LaunchBenchConfig:
    """What one ``katazuke bench launch`` run measures."""

    repeats: int = field(default=5, metadata={"help": "measured repeats (after 1 warm-up)"})
    respawns: int = field(default=5, metadata={"help": "talker kills in the respawn test"})
    domain_id: int = field(default=-1, metadata={
        "help": "ROS_DOMAIN_ID for the benchmark's nodes (-1: 150 + pid % 80)"})
    timeout: float = field(default=90.0, metadata={"help": "seconds allowed for startup"})

    def __post_init__(self) -> None:
        if self.repeats < 1 or self.respawns < 1:
            raise ConfigError("repeats and respawns must be >= 1")
        if not self.timeout > 0:
            raise ConfigError(f"timeout must be > 0 s, got {self.timeout}")


class _Lines:
    """Reads a :func:`katazuke.testing.start_process` child's output file line by line, live.

    ``os.pread`` leaves the file offset the child writes at untouched.
    """

    def __init__(self, proc: Any) -> None:
        self._fd = proc.output_file.fileno()
        self._offset = 0
        self._buf = ""
        self._pending: list[tuple[float, str]] = []
        self.lines: list[tuple[float, str]] = []

    def _poll(self) -> None:
        while True:
            chunk = os.pread(self._fd, 65536, self._offset)
            if not chunk:
                break
            self._offset += len(chunk)
            self._buf += chunk.decode(errors="replace")
        *done, self._buf = self._buf.split("\n")
        now = time.monotonic()
        self._pending += [(now, ln) for ln in done]

    def wait_for(self, pred: Callable[[str], bool], timeout: float) -> tuple[float, str]:
        """Return (time, line) of the first new line matching ``pred``."""
        deadline = time.monotonic() + timeout
        while True:
            if not self._pending:
                self._poll()
            while self._pending:
                t, line = self._pending.pop(0)
                self.lines.append((t, line))
                if pred(line):
                    return t, line
            if time.monotonic() > deadline:
                tail = "\n".join(ln for _, ln in self.lines[-30:])
                raise KatazukeError(f"benchmark timed out waiting for output; last lines:\n{tail}")
            time.sleep(0.002)  # poll often: line times are the measurement


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


def _kill9_file(tmp: Path) -> Path:
    p = tmp / "kill9.launch.xml"
    p.write_text("""<?xml version="1.0"?>
<launch>
  <push_ros_namespace namespace="bench_kill9"/>
  <node pkg="katazuke_ros" exec="talker" name="talker"/>
  <node pkg="katazuke_ros" exec="listener" name="listener" output="screen"/>
  <executable cmd="sh -c 'sleep 3601 &amp; sleep 3601'" name="sh_two"/>
  <executable cmd="sh -c 'sleep 3602 &amp; wait'" name="sh_wait"/>
  <executable cmd="sh -c '(setsid sleep 3603 &amp;); sleep 3604'" name="sh_setsid"/>
</launch>
""")
    return p


def _launch(path: Path, domain: int, log_dir: Path, env: dict[str, str] | None = None
            ) -> tuple[Any, _Lines]:
    cmd = [sys.executable, "-P", "-m", "katazuke.cli", "launch", str(path), "--domain-id",
           str(domain), "--log-dir", str(log_dir)]
    p = start_process(cmd, env=dict(env or os.environ))
    return p, _Lines(p)


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
        kids = _node_processes(launcher.pid)
        tree = descendants(launcher.pid)
        if len(kids) != 2 * len(_NAMESPACES):
            raise KatazukeError(f"expected {2 * len(_NAMESPACES)} node processes, found {len(kids)}")
        t_sig = time.monotonic()
        launcher.send_signal(signal.SIGINT)
        rc = launcher.wait(timeout=60)
        t_exit = time.monotonic()
        # every process of the tree (guards, nodes and anything they started), after the
        # launcher has exited
        orphans = [k for k in tree if process_alive(k)]
        return {"startup_s": t_ready - t0, "shutdown_s": t_exit - t_sig, "rc": rc,
                "orphans": len(orphans)}
    finally:
        finish_process(launcher, signal.SIGKILL, timeout=10.0)


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
                cmd = [str(lib / exe), "--ros-args", "-r", f"__node:={exe}", "-r",
                       f"__ns:=/peer_{ns}", "-r", "status:=task_status"]
                p = start_process(cmd, env=env)
                procs.append(p)
                lines.append(_Lines(p))
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
            finish_process(p, signal.SIGKILL, timeout=10.0)


def _kill9_run(path: Path, domain: int, log_dir: Path, timeout: float) -> dict:
    """One kill -9 of the launcher once its whole tree is up; see the module docstring."""
    import uuid

    marker = uuid.uuid4().hex
    launcher, out = _launch(path, domain, log_dir, dict(os.environ, **{_MARK: marker}))
    try:
        out.wait_for(lambda line: bool(_STATUS.match(line)), timeout)  # the nodes talk

        def sleeps_up() -> bool:
            args = [c.split()[-1] for c in processes_with_env(_MARK, marker).values()
                    if c.split()[:1] == ["sleep"]]
            return all(args.count(a) == n for a, n in _KILL9_SLEEPS.items())

        deadline = time.monotonic() + timeout
        while not sleeps_up():
            if time.monotonic() > deadline:
                raise KatazukeError(f"kill -9 run: the shells' sleeps did not all start: "
                                    f"{processes_with_env(_MARK, marker)}")
            time.sleep(0.05)
        tree = (set(descendants(launcher.pid)) | set(processes_with_env(_MARK, marker))) - {launcher.pid}
        tree_cmds = {str(pid): describe_process(pid) for pid in sorted(tree)}
        t_kill = time.monotonic()
        launcher.kill()
        launcher.wait(timeout=10)
        t_gone = None  # first check that found none alive: an upper bound of the time
        while t_gone is None and time.monotonic() - t_kill < 2.0:
            if not (any(process_alive(p) for p in tree) or processes_with_env(_MARK, marker)):
                t_gone = time.monotonic()
            else:
                time.sleep(0.005)
        # the count at 2 s after the kill, as the bar says
        time.sleep(max(0.0, t_kill + 2.0 - time.monotonic()))
        alive = {p for p in tree if process_alive(p)} | set(processes_with_env(_MARK, marker))
        # what outlived the kill and, then, the tree as it was at the kill (whose child it was)
        survivors = {str(pid): describe_process(pid) for pid in sorted(alive)}
        run = {"tree": len(tree), "alive_after_2s": len(alive), "survivors": survivors,
               "all_gone_s": None if t_gone is None else t_gone - t_kill}
        if survivors:
            run["tree_at_kill"] = tree_cmds
        return run
    finally:
        finish_process(launcher, signal.SIGKILL, timeout=10.0)
        for pid in processes_with_env(_MARK, marker):  # never leave orphans, even on failure
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _respawn_run(path: Path, domain: int, log_dir: Path, kills: int, timeout: float,
                 bar: Any) -> list[dict]:
    launcher, out = _launch(path, domain, log_dir)
    results = []
    try:
        def status_id(line: str) -> int | None:
            m = _STATUS.match(line)
            return int(m.group(2)) if m else None

        for _ in range(kills):
            # the current talker has published for ~5 s (ids >= 100 at 20 Hz): steady
            out.wait_for(lambda line: (status_id(line) or 0) >= _STEADY_ID, timeout)
            talker = next(k for k in _node_processes(launcher.pid)
                          if b"__node:=talker" in Path(f"/proc/{k}/cmdline").read_bytes())
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
        finish_process(launcher, signal.SIGINT, timeout=20.0)


def run(cfg: LaunchBenchConfig) -> dict[str, Any]:
    """Shutdown, startup and peer timings (after one warm-up pair) and the respawn runs."""
    from tqdm import tqdm

    domain = cfg.domain_id if cfg.domain_id >= 0 else 150 + os.getpid() % 80
    tmp = Path(tempfile.mkdtemp(prefix="katazuke_bench_launch_"))
    six, resp, k9 = _six_node_file(tmp), _respawn_file(tmp), _kill9_file(tmp)
    runs, peers, kills = [], [], []
    with tqdm(total=3 * (cfg.repeats + 1) + cfg.respawns, desc="bench launch", unit="run") as bar:
        for i in range(cfg.repeats + 1):
            r = _shutdown_run(six, domain, tmp / "log", cfg.timeout)
            bar.update(1)
            p = _peer_run(domain, cfg.timeout)
            bar.update(1)
            kills.append(_kill9_run(k9, domain, tmp / "log", cfg.timeout))  # every run counts
            bar.update(1)
            if i > 0:  # the first pair is the warm-up
                runs.append(r)
                peers.append(p)
        respawns = _respawn_run(resp, domain, tmp / "log", cfg.respawns, cfg.timeout, bar)
    shutdown = [r["shutdown_s"] for r in runs]
    startup = [r["startup_s"] for r in runs]
    peer = [p["shutdown_s"] for p in peers]
    first = respawns[0]
    return {
        "nodes": 2 * len(_NAMESPACES), "repeats": cfg.repeats,
        "shutdown_s": shutdown, "shutdown_median_s": median(shutdown),
        "startup_s": startup, "startup_median_s": median(startup),
        "peer_direct_sigint_shutdown_s": peer, "peer_direct_sigint_shutdown_median_s": median(peer),
        "launcher_exit_codes": sorted({r["rc"] for r in runs}),
        "orphans": sum(r["orphans"] for r in runs),
        "kill9": {"runs": kills, "alive_after_2s": sum(k["alive_after_2s"] for k in kills),
                  "tree_sizes": sorted({k["tree"] for k in kills}),
                  "all_gone_median_s": median(k["all_gone_s"] for k in kills
                                              if k["all_gone_s"] is not None)
                  if any(k["all_gone_s"] is not None for k in kills) else None},
        "respawn": respawns,
        "respawn_overhead_median_s": median(r["launcher_overhead_s"] for r in respawns),
        "respawn_first_kill_to_new_pid_s": first["kill_to_new_pid_s"],
        "respawn_first_kill_to_first_message_s": first["kill_to_first_message_s"],
    }


def _gone(k: dict[str, Any]) -> str:
    t = k.get("all_gone_median_s")
    return "some processes outlived the 2 s" if t is None else f"median time until none was left (first check finding none): {t * 1000:.0f} ms"


def markdown(res: dict[str, Any], command: str = "") -> str:
    """The report of :func:`run`'s results (bars table from :data:`BARS`)."""
    from katazuke.bench.harness import bars_markdown

    shutdown, peer, startup = (res["shutdown_s"], res["peer_direct_sigint_shutdown_s"],
                               res["startup_s"])
    rows = "\n".join(
        f"| {i + 1} | {r['scheduled_delay_s']:.2f} | {r['kill_to_new_pid_s']:.3f} | "
        f"{r['launcher_overhead_s']:.3f} | {r['kill_to_first_message_s']:.2f} |"
        for i, r in enumerate(res["respawn"]))
    return f"""## Launcher (`katazuke launch`)

Six real nodes (3 x talker + listener from `launch/demo_talker_listener.launch.xml`, one
namespace each). Median of {res['repeats']} runs after 1 warm-up.

{bars_markdown(evaluate_bars(res, BARS))}

| measurement | median | all runs |
|---|---|---|
| clean shutdown: SIGINT to the launcher -> launcher exited, all 6 nodes and their guards reaped | **{median(shutdown):.2f} s** | {", ".join(f"{x:.2f}" for x in shutdown)} |
| peer: the same 6 processes started directly, SIGINT to each -> all exited | {median(peer):.2f} s | {", ".join(f"{x:.2f}" for x in peer)} |
| startup: launch -> every listener has received a message | {median(startup):.2f} s | {", ".join(f"{x:.2f}" for x in startup)} |

Launcher exit codes: {res['launcher_exit_codes']}; processes left alive after shutdown: {res['orphans']}.

kill -9 of the launcher running a talker, a listener and three `<executable>` shells with
grandchildren (`sh -c 'a & b'`, `sh -c 'a & wait'`, a `setsid` daemon): {len(res['kill9']['runs'])}
runs, {", ".join(str(n) for n in res['kill9']['tree_sizes'])} processes in the tree (guards
included); **{res['kill9']['alive_after_2s']} alive 2 s after the kill** (all runs together);
{_gone(res['kill9'])}.

Respawn (`respawn="true" respawn_delay="0"`, talker SIGKILLed once it has published ~5 s;
quick repeated crashes double the delay from 0.1 s, so the scheduled delay grows):

| kill | scheduled delay [s] | kill -> new pid [s] | launcher overhead [s] | kill -> listener got new talker's message [s] |
|---|---|---|---|---|
{rows}

Median launcher overhead (kill -> new pid minus scheduled delay):
{res['respawn_overhead_median_s'] * 1000:.0f} ms. The kill -> message time is dominated by the
Python node's own start-up (imports, rclpy init) and DDS discovery between the new talker and
the listener (the listener can miss the first messages until it has matched the new publisher).
{f"{chr(10)}Command: `{command}`{chr(10)}" if command else ""}"""
