"""Guard process between the launcher and one launched process (Linux only).

Run by :class:`katazuke.launcher.supervisor.Supervisor` as::

    python -I -S _guard.py STATUS_FD LAUNCHER_PID -- COMMAND [ARG ...]

never imported. It imports only built-in modules (``os``, ``_signal``, ``_ctypes``: no
``signal``/``ctypes`` packages, whose ``enum`` imports would double its start-up time) and
it must not import ``katazuke``. The launcher has already made it a child subreaper
(``PR_SET_CHILD_SUBREAPER``) with ``PR_SET_PDEATHSIG = SIGUSR1`` before exec, so:

1. It forks COMMAND into a new session (its pid is its process group, which is what the
   launcher signals for SIGINT/SIGTERM/SIGKILL), with ``PR_SET_PDEATHSIG = SIGKILL``
   against the guard and default signal dispositions, and writes ``P<pid>`` to
   STATUS_FD (or ``E<errno>`` when exec failed, then exits 127), then closes it.
2. Every process COMMAND starts, in whatever session or group, stays a descendant of
   the guard: orphans are reparented to it (subreaper) and reaped by it.
3. When COMMAND exits, the guard SIGKILLs every remaining descendant, reaps them and
   exits with COMMAND's status (exit code, or death by the same signal).
4. On SIGUSR1 (the launcher died: the death signal; or the launcher asking), SIGTERM,
   SIGHUP or SIGINT sent to the guard itself, it does the same at once: SIGKILL to
   COMMAND's group and to every descendant, reap, exit.

Nothing escapes it except a process started on its behalf by a daemon outside the tree
(``systemd-run``, ``at``, a D-Bus activation, ``docker run``...).
"""
import _signal
import os
import sys
import time

__all__ = ["main"]

_PR_SET_PDEATHSIG = 1
_SIGKILL = _signal.SIGKILL
_DOOM = (_signal.SIGUSR1, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGINT)
#: Python sets these to SIG_IGN at start-up; the command must get them at their default.
_RESET = _DOOM + (_signal.SIGPIPE, _signal.SIGXFSZ)
_KILL_TIMEOUT_S = 5.0


class _Doomed(Exception):
    """Raised by the signal handler: stop waiting, kill the tree."""


_dooming = [False]


def _doom(signum, frame):
    # Only the first signal interrupts: a second one (the death signal and a SIGTERM, say)
    # arriving while the first is handled, before the handlers are set to SIG_IGN, would
    # raise out of the clean-up itself and end the guard with the tree still running
    # (its grandchildren then reparented to PID 1).
    if _dooming[0]:
        return
    _dooming[0] = True
    raise _Doomed(signum)


def _prctl():
    import _ctypes

    class _Int(_ctypes._SimpleCData):
        _type_ = "i"

    class _Func(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = _Int

    class _Lib:
        _handle = _ctypes.dlopen(None)

    return _Func(("prctl", _Lib()))


def _children_map():
    """ppid -> [pid] of every live (non-zombie) process, from /proc."""
    kids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/" + entry + "/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        rest = stat[stat.rfind(b")") + 2:].split()
        if len(rest) > 1 and rest[0] != b"Z":
            kids.setdefault(int(rest[1]), []).append(int(entry))
    return kids


def _descendants(root):
    kids = _children_map()
    found, todo = [], [root]
    while todo:
        for pid in kids.get(todo.pop(), ()):
            found.append(pid)
            todo.append(pid)
    return found


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def _reap(state):
    """Reap every exited child without blocking; False once the guard has no child left."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True
        if pid == state["pid"]:
            state["status"] = status


def _kill_tree(state):
    """SIGKILL the command's group and every descendant until the guard has no child left."""
    me = os.getpid()
    if state["pid"] > 0:
        try:
            os.killpg(state["pid"], _SIGKILL)
        except OSError:
            pass
    if not _reap(state):  # the usual case: nothing left, no /proc scan needed
        return
    deadline = time.monotonic() + _KILL_TIMEOUT_S
    while True:
        # Processes forked while we kill are reparented to us (subreaper): the next round
        # finds them; the loop ends when the guard has no child at all.
        for pid in _descendants(me):
            _kill(pid, _SIGKILL)
        if not _reap(state):
            return
        if time.monotonic() > deadline:
            os.write(2, b"katazuke guard: processes survive SIGKILL (uninterruptible sleep?)\n")
            return
        time.sleep(0.002)


def _exit_like(status):
    """Exit with ``status`` (a waitpid status): the same code, or death by the same signal."""
    if os.WIFEXITED(status):
        os._exit(os.WEXITSTATUS(status))
    sig = os.WTERMSIG(status)
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
        if sig != _SIGKILL and sig != _signal.SIGSTOP:
            _signal.signal(sig, _signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    except (OSError, ValueError):
        pass
    os._exit(128 + sig)


def _exec_child(argv, err_w, guard_pid, prctl):
    """In the forked child: new session, death signal, default signals, exec. Never returns."""
    code = 127
    try:
        os.setsid()
        if prctl(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0) != 0:
            raise OSError(_ctypes_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != guard_pid:  # the guard died before the death signal was set
            os._exit(1)
        for sig in _RESET:
            _signal.signal(sig, _signal.SIG_DFL)
        os.execvp(argv[0], argv)
    except OSError as exc:
        os.write(err_w, str(exc.errno or 0).encode())
    except BaseException:  # _Doomed: the guard was told to stop while we forked
        code = 1
    os._exit(code)


def _ctypes_errno():
    import _ctypes

    return _ctypes.get_errno()


def main(argv):
    status_fd, launcher_pid, sep, command = int(argv[1]), int(argv[2]), argv[3], argv[4:]
    if sep != "--" or not command:
        os.write(2, b"usage: _guard.py STATUS_FD LAUNCHER_PID -- COMMAND [ARG ...]\n")
        os._exit(2)
    os.set_inheritable(status_fd, False)
    state = {"pid": 0, "status": None}
    for sig in _DOOM:
        _signal.signal(sig, _doom)
    try:
        if os.getppid() != launcher_pid:  # launcher gone before we could be told
            raise _Doomed(0)
        prctl = _prctl()
        err_r, err_w = os.pipe()
        me = os.getpid()
        pid = os.fork()
        if pid == 0:
            os.close(err_r)
            _exec_child(command, err_w, me, prctl)
        state["pid"] = pid
        os.close(err_w)
        err = b""
        while True:
            chunk = os.read(err_r, 64)
            if not chunk:
                break
            err += chunk
        os.close(err_r)
        os.write(status_fd, (b"E" + err) if err else b"P%d" % pid)
        os.close(status_fd)
        if err:
            os.waitpid(pid, 0)
            os._exit(127)
        while True:  # reap orphans reparented to us until the command itself exits
            wpid, status = os.waitpid(-1, 0)
            if wpid == pid:
                state["status"] = status
                break
        _dooming[0] = True  # from here on nothing may interrupt the clean-up
        for sig in _DOOM:
            _signal.signal(sig, _signal.SIG_IGN)
        _kill_tree(state)
    except _Doomed:
        for sig in _DOOM:
            _signal.signal(sig, _signal.SIG_IGN)
        _kill_tree(state)
    if state["status"] is None:
        os._exit(1)
    _exit_like(state["status"])


if __name__ == "__main__":
    main(sys.argv)
