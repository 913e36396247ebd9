"""Process supervisor: one OS process per launch entity, clean teardown, respawn (Linux only).

:class:`Supervisor` starts every :class:`~katazuke.launcher.graph.ProcessSpec` of a
:class:`~katazuke.launcher.graph.LaunchGraph` in its own session / process group,
forwards its output line by line prefixed with ``[label]`` and enforces:

- **Teardown** (Ctrl-C, SIGINT, SIGTERM or SIGHUP to the launcher, a required process
  exiting, or :meth:`Supervisor.request_shutdown`): SIGINT to every process group,
  wait up to ``shutdown_timeout`` seconds, SIGTERM to the groups still alive, wait
  ``shutdown_timeout`` again, then SIGKILL. A second signal skips to the next stage.
  At the end any process left in one of our process groups is SIGKILLed.
- **No orphans, even when the launcher is SIGKILLed**: each process is started through
  a guard (:mod:`katazuke.launcher._guard`, a pure-Python process that imports only
  built-in modules), ``launcher -> guard -> process``. The guard is a child subreaper
  (``PR_SET_CHILD_SUBREAPER``) with ``PR_SET_PDEATHSIG = SIGUSR1`` against the launcher,
  so whatever the process starts stays the guard's descendant, in any session or group
  (``sh -c 'a & b'``, a ``setsid`` daemon whose parent exits), and when the launcher dies
  the guard SIGKILLs the process's group and every descendant, reaps them and exits. The
  process itself gets ``PR_SET_PDEATHSIG = SIGKILL`` against its guard. When the process
  exits, its guard SIGKILLs what it left behind and exits with the process's status
  (same code, or death by the same signal), which is what the supervisor reports.
  SIGKILL, not SIGTERM: an idle rclpy node whose SIGTERM handler only runs when its
  executor wakes up would otherwise survive its launcher. Only a process started on
  our behalf by a daemon outside the tree (``systemd-run``, ``at``, ``docker run``)
  escapes. Cost per process: one extra Python start (~10 ms before the process is
  exec'd) and a guard of ~8 MiB RSS, most of it shared with other Pythons.
- **Pids**: :meth:`Supervisor.pids`, the ``started``/``exited`` lines and
  :class:`ProcessEvent` give the process's own pid, which leads its process group and
  session (it is the guard's child, not the launcher's: ``child_processes(launcher)``
  lists the guards, whose command lines end with the guarded command).
- **Respawn** (``respawn="true"``): a process that exits while the system runs is
  restarted after ``respawn_delay``; consecutive restarts of a process that ran less
  than ``stable_after_s`` double the delay (starting from max(delay, 0.1 s)), capped
  at ``backoff_cap_s``. ``respawn_max_retries`` (>= 0) bounds the number of restarts.
- **Required processes** (``on_exit="shutdown"``): their exit tears everything
  down; the exit status is 1 when such a process failed (non-zero exit or signal).
- **Components**: a ``<node_container>``'s components run as one process each
  (:meth:`~katazuke.launcher.graph.LaunchGraph.runnable`), with a note line each.
- **Timers and shutdown**: a process inside ``<timer period>`` starts ``start_delay``
  seconds after the launch; a ``<shutdown>`` action tears everything down when reached.
- **Per-process escalation**: a stage waits the longest ``sigterm_timeout`` (after SIGINT)
  or ``sigkill_timeout`` (after SIGTERM) that a running process asked for, else
  ``shutdown_timeout``.

The supervisor reads no clock except ``time.monotonic`` for its own deadlines.
"""
from __future__ import annotations

import ctypes
import os
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from katazuke.errors import KatazukeError
from katazuke.launcher.graph import LaunchGraph, ProcessSpec

__all__ = ["Supervisor", "ProcessEvent", "process_group_members", "child_processes", "descendants",
           "processes_with_env", "describe_process",
           "process_alive"]

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_GUARD = Path(__file__).resolve().with_name("_guard.py")
#: Seconds a guard may take to report its process's pid (a Python start and a fork).
_GUARD_START_TIMEOUT_S = 30.0


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def _guard_setup(parent_pid: int) -> Callable[[], None]:
    """``preexec_fn`` of a guard: subreaper, death signal, default SIGINT/SIGTERM."""
    assert _PRCTL is not None
    prctl = _PRCTL

    def setup() -> None:
        # Runs in the child between fork and exec: only async-signal-safe work. Both
        # attributes survive the exec of the guard (the death signal is dropped only
        # by a set-uid exec and by fork).
        if prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0 \
                or prctl(_PR_SET_PDEATHSIG, int(signal.SIGUSR1), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER / PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent_pid:  # the launcher died before prctl took effect
            os._exit(1)
        # The launcher may ignore SIGINT while it forks; children must not inherit that.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    return setup


def _live_processes() -> Iterator[tuple[int, list[str]]]:
    """``(pid, stat fields after the command name)`` of every live (non-zombie) process."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2:].split()
        if len(rest) > 2 and rest[0] != "Z":
            yield int(entry), rest


def process_group_members(pgid: int) -> list[int]:
    """PIDs of live (non-zombie) processes whose process group is ``pgid`` (Linux /proc)."""
    return [pid for pid, rest in _live_processes() if int(rest[2]) == pgid]


def child_processes(ppid: int) -> list[int]:
    """PIDs of live (non-zombie) direct children of ``ppid`` (Linux /proc)."""
    return [pid for pid, rest in _live_processes() if int(rest[1]) == ppid]


def descendants(pid: int) -> list[int]:
    """PIDs of every live (non-zombie) process below ``pid``, at any depth (one /proc scan)."""
    kids: dict[int, list[int]] = {}
    for child, rest in _live_processes():
        kids.setdefault(int(rest[1]), []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in kids.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def process_alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie (a zombie is dead, only not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode(errors="replace")
    except OSError:
        return False
    rest = stat[stat.rfind(")") + 2:].split()
    return bool(rest) and rest[0] != "Z"


def _read_proc(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def describe_process(pid: int) -> str:
    """``"<command line> (state S, ppid P, pgrp G, session S)"`` of a live process, from
    /proc (for reports of processes that should not be there)."""
    stat = _read_proc(f"/proc/{pid}/stat")
    rest = stat[stat.rfind(b")") + 2:].split()  # state ppid pgrp session ...
    if len(rest) < 4:
        return "(gone while reading)"
    cmd = _read_proc(f"/proc/{pid}/cmdline").replace(b"\0", b" ").decode(errors="replace")
    return (f"{cmd.strip()[-100:]} (state {rest[0].decode()}, ppid {int(rest[1])}, "
            f"pgrp {int(rest[2])}, session {int(rest[3])})")


def processes_with_env(name: str, value: str) -> dict[int, str]:
    """pid -> command line of every live process whose environment holds ``name=value``.

    Finds a process tree's members wherever they were reparented (PID 1 included), when
    the tree's root started them with a unique marker in the environment."""
    token = f"{name}={value}".encode()
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit() and process_alive(int(d)) and token in _read_proc(f"/proc/{d}/environ").split(b"\0"):
            cmd = _read_proc(f"/proc/{d}/cmdline").replace(b"\0", b" ")
            out[int(d)] = cmd.decode(errors="replace").strip()
    return out


@dataclass(frozen=True)
class ProcessEvent:
    """Something that happened to a process (for logs, tests and benchmarks).

    Attributes:
        t: ``time.monotonic()`` seconds.
        label: the process label.
        kind: ``start``, ``exit``, ``respawn`` (scheduled) or ``start-failed``.
        pid: the process's OS pid, not its guard's (0 when the start failed).
        code: exit status for ``exit`` (negative: killed by that signal).
        delay: scheduled delay in seconds for ``respawn``.
    """

    t: float
    label: str
    kind: str
    pid: int = 0
    code: int | None = None
    delay: float = 0.0


@dataclass
class _Proc:
    spec: ProcessSpec
    popen: subprocess.Popen | None = None  # the guard
    pid: int = 0  # the process itself (leads its session and group)
    pgid: int = 0
    started_at: float = 0.0
    restarts: int = 0
    backoff: int = 0
    next_start: float | None = None
    finished: bool = False
    readers: list[threading.Thread] = field(default_factory=list)


class Supervisor:
    """Run a launch graph until it ends or is shut down.

    Args:
        graph: what to run.
        shutdown_timeout: seconds to wait after SIGINT (and again after SIGTERM)
            before escalating.
        backoff_cap_s: longest respawn delay.
        stable_after_s: a process that ran at least this long resets its backoff.
        stdout, stderr: where prefixed output goes (default: ``sys.stdout``/``sys.stderr``).
        log_file: every line of every process and of the launcher is also written
            here (``output="log"`` sends a process's stdout only here).
        on_event: called (from the supervisor thread) with each :class:`ProcessEvent`.

    Raises:
        KatazukeError: not on Linux (the no-orphan guarantee needs ``prctl`` and
            ``/proc``), no Python interpreter path to start guards with, a
            non-positive ``shutdown_timeout`` or a graph without processes.
    """

    def __init__(self, graph: LaunchGraph, shutdown_timeout: float = 5.0, backoff_cap_s: float = 30.0,
                 stable_after_s: float = 10.0, stdout: IO[str] | None = None,
                 stderr: IO[str] | None = None, log_file: Path | None = None,
                 on_event: Callable[[ProcessEvent], None] | None = None) -> None:
        if not sys.platform.startswith("linux") or _PRCTL is None:
            raise KatazukeError(f"katazuke launch runs on Linux only (it needs prctl PR_SET_CHILD_SUBREAPER/"
                                f"PR_SET_PDEATHSIG and /proc to leave no process behind); this is "
                                f"{sys.platform}: use ros2 launch there")
        if not sys.executable:
            raise KatazukeError("sys.executable is empty: the launcher needs a Python interpreter path "
                                "to start its process guards; run it with a regular python")
        if shutdown_timeout <= 0:
            raise KatazukeError(f"shutdown timeout must be > 0 s, got {shutdown_timeout}")
        graph, self._notes = graph.runnable()  # components become processes (a note each)
        if not graph.processes:
            raise KatazukeError(f"{graph.file}: the launch file starts no process")
        self.graph = graph
        self.shutdown_timeout = float(shutdown_timeout)
        self.backoff_cap_s = float(backoff_cap_s)
        self.stable_after_s = float(stable_after_s)
        self._out = stdout or sys.stdout
        self._err = stderr or sys.stderr
        self._log_path = log_file
        self._log: IO[str] | None = None
        self._on_event = on_event
        self._procs = [_Proc(spec) for spec in graph.processes]
        self._lock = threading.Lock()
        # Self-pipe: signal handlers and other threads wake the loop by writing a byte;
        # no lock is ever taken in a signal handler.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._shutdown_reason: str | None = None
        self._signals = 0
        self._failed_required: list[str] = []
        self.events: list[ProcessEvent] = []
        self._param_dir: Path | None = None
        self._all_pgids: set[int] = set()
        self._shutdown_at: float | None = None  # a <shutdown> action, run at this time

    # ------------------------------------------------------------------ public
    def request_shutdown(self, reason: str = "shutdown requested") -> None:
        """Ask the main loop to tear down (safe from signal handlers and other threads)."""
        if self._shutdown_reason is None:
            self._shutdown_reason = reason
        self._signals += 1
        self._wakeup()

    def _wakeup(self) -> None:
        if self._wake_w < 0:  # run() has finished
            return
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass  # pipe full (a wake-up is pending anyway) or closed

    def pids(self) -> dict[str, int]:
        """Label -> pid of each process currently running (the process, not its guard)."""
        return {p.spec.label: p.pid for p in self._procs
                if p.popen is not None and p.popen.returncode is None and p.pid > 0}

    def run(self, handle_signals: bool = True) -> int:
        """Start everything and supervise until the launch ends.

        Args:
            handle_signals: install SIGINT/SIGTERM/SIGHUP handlers (main thread only).

        Returns:
            1 if a required (``on_exit="shutdown"``) process failed, else 0.
        """
        if self._wake_w < 0:
            raise KatazukeError("a Supervisor runs once; create a new one to launch again")
        previous: dict[int, Any] = {}
        old_wakeup_fd = None
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                previous[sig] = signal.signal(sig, self._on_signal)
            # Any handled signal (SIGCHLD included) writes to the self-pipe, so a child's
            # exit wakes the loop at once (respawn latency) instead of at the next poll.
            previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, lambda *_: None)
            old_wakeup_fd = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        self._param_dir = Path(tempfile.mkdtemp(prefix="katazuke_launch_"))
        if self._log_path is not None:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self._log_path, "a", encoding="utf-8")
        try:
            for msg in self.graph.messages:
                self._say(msg)
            for note in self._notes:
                self._say(f"note: {note}")
            # Spawn every guard first, then collect their reports: the guards' Python
            # start-ups overlap instead of adding up.
            spawned = []
            t0 = time.monotonic()
            for proc in self._procs:
                if self._shutdown_reason is not None:
                    break
                if proc.spec.start_delay > 0:  # inside a <timer>: the loop starts it when due
                    proc.next_start = t0 + proc.spec.start_delay
                    continue
                spawned.append((proc, self._spawn(proc)))
            for proc, pending in spawned:
                if pending is not None:
                    self._started(proc, *pending)
            if self.graph.shutdown is not None:
                self._shutdown_at = t0 + self.graph.shutdown[0]
            self._loop()
        finally:
            self._sweep()
            for proc in self._procs:
                for t in proc.readers:
                    t.join(timeout=1.0)
            if old_wakeup_fd is not None:
                signal.set_wakeup_fd(old_wakeup_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            wake_w, self._wake_w = self._wake_w, -1
            os.close(wake_w)
            os.close(self._wake_r)
            for f in self._param_dir.iterdir():
                f.unlink()
            self._param_dir.rmdir()
            if self._log is not None:
                self._log.close()
                self._log = None
        return 1 if self._failed_required else 0

    # ------------------------------------------------------------------ internals
    def _on_signal(self, signum: int, frame: Any) -> None:
        del frame
        self.request_shutdown(f"received {signal.Signals(signum).name}")

    def _emit(self, event: ProcessEvent) -> None:
        self.events.append(event)
        if self._on_event is not None:
            self._on_event(event)

    def _write(self, stream: IO[str] | None, text: str) -> None:
        with self._lock:
            if stream is not None:
                try:
                    stream.write(text)
                    stream.flush()
                except (ValueError, OSError):
                    pass
            if self._log is not None:
                self._log.write(text)
                self._log.flush()

    def _say(self, text: str) -> None:
        self._write(self._err, f"[launch] {text}\n")

    def _pump(self, proc: _Proc, pipe: IO[bytes], is_err: bool) -> None:
        spec = proc.spec
        if is_err:
            screen = self._err
        else:
            screen = self._out if spec.output in ("screen", "both") else None
        prefix = f"[{spec.label}] "
        for raw in iter(pipe.readline, b""):
            self._write(screen, prefix + raw.decode(errors="replace").rstrip("\r\n") + "\n")
        pipe.close()

    def _start(self, proc: _Proc) -> None:
        pending = self._spawn(proc)
        if pending is not None:
            self._started(proc, *pending)

    def _start_failed(self, proc: _Proc, exc: Exception) -> None:
        self._say(f"cannot start {proc.spec.label} ({proc.spec.source}): {exc}")
        self._emit(ProcessEvent(time.monotonic(), proc.spec.label, "start-failed"))
        proc.popen = None
        self._after_exit(proc, 127, time.monotonic())

    def _spawn(self, proc: _Proc) -> tuple[subprocess.Popen, int, list[str]] | None:
        """Start the guard of ``proc`` (its output is pumped from now on).

        Returns:
            (guard, read end of its status pipe, argv), or None when it could not start.
        """
        spec = proc.spec
        assert self._param_dir is not None
        argv = spec.argv(self._param_dir)
        status_r, status_w = os.pipe()
        try:
            popen = subprocess.Popen(
                [sys.executable, "-I", "-S", str(_GUARD), str(status_w), str(os.getpid()), "--", *argv],
                env=spec.env, cwd=spec.cwd, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                preexec_fn=_guard_setup(os.getpid()), close_fds=True, pass_fds=(status_w,))
        except (OSError, subprocess.SubprocessError) as exc:
            os.close(status_r)
            self._start_failed(proc, exc)
            return None
        finally:
            os.close(status_w)
        proc.popen, proc.pid = popen, 0  # the sweep reaches the guard even before it reports
        proc.readers = [threading.Thread(target=self._pump, args=(proc, popen.stdout, False), daemon=True),
                        threading.Thread(target=self._pump, args=(proc, popen.stderr, True), daemon=True)]
        for t in proc.readers:
            t.start()
        return popen, status_r, argv

    def _started(self, proc: _Proc, popen: subprocess.Popen, status_r: int, argv: list[str]) -> None:
        """Wait for the guard's report; record the started process (or the failure)."""
        spec = proc.spec
        try:
            pid = self._guarded_pid(popen, status_r, argv[0])
        except OSError as exc:
            self._start_failed(proc, exc)
            return
        finally:
            os.close(status_r)
        proc.pid = proc.pgid = pid  # the process leads its own session and group
        self._all_pgids.add(proc.pgid)
        proc.started_at = time.monotonic()
        proc.next_start = None
        self._say(f"started {spec.label} (pid {pid}): {shlex.join(argv)}")
        self._emit(ProcessEvent(proc.started_at, spec.label, "start", pid))

    @staticmethod
    def _guarded_pid(popen: subprocess.Popen, status_r: int, program: str) -> int:
        """The pid a guard reports once its process is exec'd.

        Raises:
            OSError: the exec failed (errno as ``subprocess`` reports it) or the guard
                died or hung before reporting.
        """
        data = b""
        deadline = time.monotonic() + _GUARD_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if select.select([status_r], [], [], max(0.0, deadline - time.monotonic()))[0]:
                chunk = os.read(status_r, 64)
                if not chunk:
                    break
                data += chunk
        else:
            popen.send_signal(signal.SIGUSR1)  # kill what it may have started
            try:
                popen.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
            raise OSError(f"its guard did not report within {_GUARD_START_TIMEOUT_S:.0f} s")
        if data.startswith(b"P") and data[1:].isdigit():
            return int(data[1:])
        code = popen.wait()
        if data.startswith(b"E") and data[1:].isdigit():
            errno = int(data[1:])
            raise OSError(errno, os.strerror(errno), program)
        raise OSError(f"its guard ({_GUARD}) exited with code {code} before starting it; "
                      "see its [label] lines above")

    def _after_exit(self, proc: _Proc, code: int, now: float) -> None:
        spec = proc.spec
        if self._shutdown_reason is not None:
            proc.finished = True
            return
        if spec.on_exit == "shutdown":
            proc.finished = True
            if code != 0:
                self._failed_required.append(spec.label)
            self.request_shutdown(f"required process {spec.label} exited with code {code}")
            self._signals = 0  # not a user signal: start at the SIGINT stage
            return
        retries_left = spec.respawn_max_retries < 0 or proc.restarts < spec.respawn_max_retries
        if spec.respawn and retries_left:
            if proc.popen is not None and now - proc.started_at >= self.stable_after_s:
                proc.backoff = 0
            if proc.backoff == 0:
                delay = spec.respawn_delay
            else:
                delay = min(max(self.backoff_cap_s, spec.respawn_delay),
                            max(spec.respawn_delay, 0.1) * 2.0 ** proc.backoff)
            proc.backoff += 1
            proc.restarts += 1
            proc.next_start = now + delay
            self._say(f"respawning {spec.label} in {delay:.2f} s (restart {proc.restarts})")
            self._emit(ProcessEvent(now, spec.label, "respawn", delay=delay))
        else:
            proc.finished = True

    def _reap(self) -> None:
        for proc in self._procs:
            popen = proc.popen
            if popen is None or popen.returncode is not None:
                continue
            code = popen.poll()
            if code is None:
                continue
            now = time.monotonic()
            self._kill_group(proc.pgid, signal.SIGKILL)  # stragglers of a dead leader
            how = f"signal {signal.Signals(-code).name}" if code < 0 and -code in signal.Signals._value2member_map_ else f"code {code}"
            self._say(f"{proc.spec.label} (pid {proc.pid}) exited with {how}")
            self._emit(ProcessEvent(now, proc.spec.label, "exit", proc.pid, code))
            self._after_exit(proc, code, now)

    def _running(self) -> list[_Proc]:
        return [p for p in self._procs if p.popen is not None and p.popen.returncode is None]

    @staticmethod
    def _kill_group(pgid: int, sig: int) -> None:
        if pgid <= 1:
            return
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _loop(self) -> None:
        stage = -1  # -1 running, 0 SIGINT sent, 1 SIGTERM sent, 2 SIGKILL sent
        deadline = 0.0
        handled_signals = 0
        while True:
            self._reap()
            now = time.monotonic()
            if self._shutdown_reason is not None:
                escalate = False
                if stage < 0:
                    self._say(f"shutting down: {self._shutdown_reason}")
                    for p in self._procs:
                        p.next_start = None
                    escalate = True
                    handled_signals = self._signals
                elif self._signals > handled_signals and stage < 2:
                    handled_signals = self._signals
                    escalate = True
                elif now >= deadline and stage < 2:
                    escalate = True
                running = self._running()
                if not running:
                    return
                if escalate:
                    stage += 1
                    sig = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)[stage]
                    if stage > 0:
                        self._say(f"escalating to {sig.name} for: "
                                  + ", ".join(p.spec.label for p in running))
                    for p in running:
                        self._kill_group(p.pgid, sig)
                    deadline = now + (self._stage_timeout(stage, running) if stage < 2 else 2.0)
                elif stage == 2 and now >= deadline:
                    self._say("processes did not exit after SIGKILL: "
                              + ", ".join(f"{p.spec.label} (pid {p.pid})" for p in running))
                    return
            elif self._shutdown_at is not None and now >= self._shutdown_at:
                assert self.graph.shutdown is not None
                self.request_shutdown(f"<shutdown> in the launch file: {self.graph.shutdown[1]}")
                continue
            else:
                for p in self._procs:
                    if p.next_start is not None and now >= p.next_start and not p.finished:
                        self._start(p)
                if not self._running() and all(p.finished for p in self._procs):
                    self._say("all processes have finished")
                    return
            if select.select([self._wake_r], [], [], 0.05)[0]:
                try:
                    while os.read(self._wake_r, 512):
                        pass
                except BlockingIOError:
                    pass

    def _stage_timeout(self, stage: int, running: list[_Proc]) -> float:
        """Seconds to wait after SIGINT (stage 0) or SIGTERM (stage 1): the launcher's
        timeout, or the longest ``sigterm_timeout`` / ``sigkill_timeout`` a running
        process asked for."""
        asked = [p.spec.sigterm_timeout if stage == 0 else p.spec.sigkill_timeout for p in running]
        return max([self.shutdown_timeout if a is None else a for a in asked], default=self.shutdown_timeout)

    def _sweep(self) -> None:
        """SIGKILL anything still alive in one of our process groups, and have every guard
        still running kill its tree (no orphans, also when the loop ended by an exception)."""
        for pgid in self._all_pgids:
            if process_group_members(pgid):
                self._kill_group(pgid, signal.SIGKILL)
        for proc in self._procs:
            if proc.popen is not None and proc.popen.poll() is None:
                try:
                    proc.popen.send_signal(signal.SIGUSR1)
                except OSError:
                    pass
        for proc in self._procs:
            if proc.popen is not None and proc.popen.returncode is None:
                try:
                    proc.popen.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    pass
