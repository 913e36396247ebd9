"""Test process for the supervisor tests (no ROS).

Usage: proc.py MODE [ARG]
  sleep            print 'ready PID', exit 0 on SIGINT
  ignore-int       ignore SIGINT, exit 0 on SIGTERM
  stubborn         ignore SIGINT and SIGTERM (only SIGKILL ends it)
  grandchild       start a child in the same process group, print its pid, sleep
  daemon           leave a daemon (fork, setsid, fork; it ignores SIGINT/SIGTERM and its
                   parent exits), print its pid, exit 0 on SIGINT
  exit CODE DELAY  sleep DELAY seconds, print 'bye', exit with CODE
  print TEXT       print TEXT on stdout and 'err TEXT' on stderr, then sleep

With ``KZ_PIDS`` set, the process (and a ``grandchild``'s child) appends its pid to that file
once it is set up.
"""
import os
import signal
import subprocess
import sys
import time

mode = sys.argv[1]
if mode == "sleep":
    signal.signal(signal.SIGINT, lambda *a: sys.exit(0))
elif mode == "ignore-int":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
elif mode == "stubborn":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
elif mode == "grandchild":
    child = subprocess.Popen([sys.executable, "-c", "import signal, time\n"
                              "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                              "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                              "time.sleep(600)"])
    print(f"grandchild {child.pid}", flush=True)
    if os.environ.get("KZ_PIDS"):
        with open(os.environ["KZ_PIDS"], "a") as fh:
            fh.write(f"{child.pid}\n")
    signal.signal(signal.SIGINT, lambda *a: sys.exit(0))
elif mode == "daemon":
    r, w = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.write(w, f"{os.getpid()}\n".encode())
            while True:
                time.sleep(0.1)
        os._exit(0)
    os.close(w)
    print(f"daemon {os.read(r, 64).decode().strip()}", flush=True)
    signal.signal(signal.SIGINT, lambda *a: sys.exit(0))
elif mode == "exit":
    time.sleep(float(sys.argv[3]))
    print("bye", flush=True)
    sys.exit(int(sys.argv[2]))
elif mode == "print":
    print(sys.argv[2], flush=True)
    print("err " + sys.argv[2], file=sys.stderr, flush=True)
if os.environ.get("KZ_PIDS"):
    with open(os.environ["KZ_PIDS"], "a") as fh:
        fh.write(f"{os.getpid()}\n")
print(f"ready {os.getpid()}", flush=True)
while True:
    time.sleep(0.1)
