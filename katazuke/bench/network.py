"""``katazuke bench network``: what the DDS stack exposes, and the LAN switch across namespaces.

1. Exposure: a ROS graph runs under the katazuke environment (default profile); ``ss -uanp``
   and ``ss -tanp`` list the sockets its processes own; every one bound to an address outside
   127.0.0.0/8 and ::1 counts as exposed (0.0.0.0 and :: count). The peer, measured in the same
   run: the same graph with Fast DDS's built-in transports and
   ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` (what ROS 2 Jazzy offers out of the box).
2. LAN switch: two network namespaces joined by a veth pair (10.x addresses, nothing else).
   A publisher (the sim bridge in the bench, a talker in the test) runs in one, a subscriber
   that counts messages in the other, shared memory off (``KATAZUKE_DDS_SHM=0``) so the
   traffic really crosses the veth. With ``KATAZUKE_DDS_NETWORK=lan`` + peers the messages
   arrive; with the default profile, in the same namespaces at the same time (another domain),
   none do. Needs root (CAP_NET_ADMIN) and ``ip``; namespaces are always removed.

The helpers (:func:`exposed_sockets`, :class:`NetnsPair`, :func:`start_counter`) are shared
with ``tests/foundation/test_dds_network.py``. ``python -m katazuke.bench.network count ...`` is
the counting subscriber started inside a namespace.

:func:`run` measures, :func:`markdown` renders, :data:`BARS` is read by both.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict
from dataclasses import dataclass as plain_dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from katazuke.bench.harness import Bar, evaluate_bars
from katazuke.config import dataclass, positive
from katazuke.errors import InputError

__all__ = ["NetworkBenchConfig", "BARS", "QUICK", "Socket", "list_sockets", "exposed_sockets",
           "descendants", "netns_unavailable", "NetnsPair", "start_counter", "read_counter",
           "builtin_env", "run", "markdown"]

BARS = (
    Bar("default profile: sockets on a non-loopback address", "summary.default_exposed", "==", 0,
        note="UDP + TCP sockets of the sim graph bound outside 127/8, ::1 (0.0.0.0 counts)"),
    Bar("LAN switch: messages received across namespaces", "summary.lan_received", ">", 0,
        note="sim bridge in one namespace, subscriber in the other, shared memory off"),
    Bar("LAN switch: rgb frames received / camera ticks received across namespaces",
        "summary.lan_image_ratio", ">=", 0.9,
        note="230 KB images over UDP vs the camera_info of the same ticks"),
    Bar("default profile: messages received across namespaces", "summary.default_received",
        "==", 0, note="same namespaces, as long as the LAN run took"),
)


@dataclass(frozen=True)
class NetworkBenchConfig:
    """What one ``katazuke bench network`` run measures."""

    seconds: float = positive(20.0, "measurement window of the cross-namespace run (s)")
    camera_hz: float = positive(10.0, "head camera rate of the sim bridge (Hz)")
    startup_timeout_s: float = positive(90.0, "time allowed for nodes to start and discover (s)")


QUICK = NetworkBenchConfig(seconds=5.0)

_PID = re.compile(r"pid=(\d+)")
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


# --------------------------------------------------------------------------- sockets
@plain_dataclass(frozen=True)
class Socket:
    """One socket from ``ss``: protocol, local address and port, owning process ids."""

    proto: str
    address: str
    port: int
    pids: tuple[int, ...]

    @property
    def exposed(self) -> bool:
        """Bound outside loopback (the wildcard addresses 0.0.0.0 / :: / * count)."""
        addr = self.address.strip("[]").split("%")[0]
        if addr in ("*", ""):
            return True
        ip = ipaddress.ip_address(addr)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return not any(ip in net for net in _LOOPBACK)


def _split_endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port) if port.isdigit() else 0


def list_sockets(netns: str | None = None) -> list[Socket]:
    """Every UDP and TCP (listening and connected) socket, with its owners (``ss -H -uanp``,
    ``ss -H -tanp``), optionally inside network namespace ``netns``.

    Raises:
        InputError: ``ss`` is missing (install the Debian package ``iproute2``).
    """
    if shutil.which("ss") is None:
        raise InputError("'ss' not found: install iproute2 (apt-get install iproute2)")
    out: list[Socket] = []
    for proto, flag in (("udp", "-uanp"), ("tcp", "-tanp")):
        cmd = (["ip", "netns", "exec", netns] if netns else []) + ["ss", "-H", flag]
        text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        for line in text.splitlines():
            cols = line.split()
            if len(cols) < 5:
                continue
            host, port = _split_endpoint(cols[3])
            out.append(Socket(proto, host, port, tuple(int(p) for p in _PID.findall(line))))
    return out


def descendants(pid: int) -> set[int]:
    """``pid`` and every live process below it (from /proc)."""
    from katazuke.launcher.supervisor import descendants as below

    return {pid, *below(pid)}


def exposed_sockets(pids: set[int], netns: str | None = None) -> list[Socket]:
    """The sockets owned by any of ``pids`` that are bound outside loopback."""
    return [s for s in list_sockets(netns) if set(s.pids) & pids and s.exposed]


def builtin_env(env: Mapping[str, str], folder: Path) -> dict[str, str]:
    """``env`` with Fast DDS's built-in transports (an empty profile) and
    ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``: the peer configuration."""
    empty = folder / "fastdds_builtin.xml"
    empty.write_text('<?xml version="1.0" encoding="UTF-8" ?>\n'
                     '<profiles xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"/>\n')
    return dict(env, FASTRTPS_DEFAULT_PROFILES_FILE=str(empty),
                FASTDDS_DEFAULT_PROFILES_FILE=str(empty), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")


# --------------------------------------------------------------------------- namespaces
def netns_unavailable() -> str | None:
    """Why two network namespaces cannot be made here (None when they can)."""
    if shutil.which("ip") is None:
        return "'ip' not found (install iproute2)"
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN)"
    name = f"kzprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        return f"'ip netns add' failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


class NetnsPair:
    """Two network namespaces joined by a veth pair, each with loopback up; a context manager
    that always deletes both.

    Attributes:
        names: the two namespace names.
        addresses: their IPv4 addresses on the veth (``10.<a>.<b>.1`` / ``.2``, /24).
    """

    def __init__(self, tag: str | None = None) -> None:
        tag = tag or str(os.getpid())
        n = int(tag) if tag.isdigit() else sum(map(ord, tag))
        self.names = (f"kz{tag}a", f"kz{tag}b")
        self.addresses = (f"10.{200 + n % 50}.{n // 50 % 250}.1", f"10.{200 + n % 50}.{n // 50 % 250}.2")
        self._made: list[str] = []

    def _ip(self, *args: str) -> None:
        r = subprocess.run(["ip", *args], capture_output=True, text=True)
        if r.returncode != 0:
            raise InputError(f"'ip {' '.join(args)}' failed: {r.stderr.strip()}")

    def __enter__(self) -> "NetnsPair":
        try:
            (a, b), (ia, ib) = self.names, self.addresses
            for ns in self.names:
                self._ip("netns", "add", ns)
                self._made.append(ns)
            self._ip("link", "add", f"{a}0", "type", "veth", "peer", "name", f"{b}0")
            self._ip("link", "set", f"{a}0", "netns", a)
            self._ip("link", "set", f"{b}0", "netns", b)
            for ns, dev, ip in ((a, f"{a}0", ia), (b, f"{b}0", ib)):
                self._ip("-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
                self._ip("-n", ns, "link", "set", dev, "up")
                self._ip("-n", ns, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Delete the namespaces (the veth pair goes with them); idempotent."""
        while self._made:
            subprocess.run(["ip", "netns", "del", self._made.pop()], capture_output=True)
        subprocess.run(["ip", "link", "del", f"{self.names[0]}0"], capture_output=True)

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def exec(self, i: int, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside namespace ``i`` (0 or 1)."""
        return ["ip", "netns", "exec", self.names[i], *argv]


# --------------------------------------------------------------------------- counter
def start_counter(topics: Sequence[str], out: Path, seconds: float, env: Mapping[str, str],
                  until: int = 0, prefix: Sequence[str] = (),
                  stop_file: Path | None = None) -> "subprocess.Popen[str]":
    """Start the counting subscriber (``python -m katazuke.bench.network count``).

    Args:
        topics: ``NAME=PKG/msg/TYPE[:QOS]`` each (QOS a :mod:`katazuke.ros.qos` name,
            default ``sensor``).
        out: JSON file it writes when done.
        seconds: how long it counts at most (s, from its start).
        env: its environment (``katazuke.rosenv.ros_environment`` of the wanted network mode).
        until: stop early once every topic has this many messages (0: never).
        prefix: command prefix, e.g. :meth:`NetnsPair.exec`'s ``ip netns exec NAME``.
        stop_file: stop early once this file exists (the caller's "window over").
    """
    from katazuke.testing import start_process

    argv = [sys.executable, "-P", "-m", "katazuke.bench.network", "count", "--json", str(out),
            "--seconds", str(seconds), "--until", str(until)]
    for t in topics:
        argv += ["--topic", t]
    if stop_file is not None:
        argv += ["--stop-file", str(stop_file)]
    return start_process([*prefix, *argv], env=dict(env))


def read_counter(proc: "subprocess.Popen[str]", out: Path, timeout: float) -> dict[str, Any]:
    """Wait for a :func:`start_counter` process and return its JSON.

    Raises:
        InputError: it failed or wrote nothing (its output is quoted).
    """
    from katazuke.testing import finish_process

    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    text = finish_process(proc)
    if proc.returncode != 0 or not out.is_file():
        raise InputError(f"counter failed (exit {proc.returncode}): {text.strip()[-500:]}")
    return json.loads(out.read_text())


def _message_class(spec: str) -> Any:
    import importlib

    pkg, kind, name = spec.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


def _count_main(argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m katazuke.bench.network count")
    ap.add_argument("--topic", action="append", required=True, help="NAME=PKG/msg/TYPE[:QOS]")
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--until", type=int, default=0)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--stop-file", type=Path)
    a = ap.parse_args(argv)
    from katazuke.ros.probe import Probe

    t0 = time.monotonic()
    with Probe(f"netcount_{os.getpid()}") as probe:
        got: dict[str, list] = {}
        for spec in a.topic:
            name, _, rest = spec.partition("=")
            typ, _, qos = rest.partition(":")
            got[name] = probe.collect(name, _message_class(typ), qos or "sensor", keep=False)
        publishers = {n: 0 for n in got}

        def done() -> bool:
            for n in got:
                publishers[n] = max(publishers[n], probe.node.count_publishers(n))
            if a.stop_file is not None and a.stop_file.exists():
                return True
            return a.until > 0 and all(len(v) >= a.until for v in got.values())

        probe.wait_for(done, timeout=a.seconds)
        res = {"seconds": time.monotonic() - t0, "publishers_seen": publishers,
               "topics": {n: {"received": len(v),
                              "first_s": v[0][0] - t0 if v else None,
                              "rate_hz": ((len(v) - 1) / (v[-1][0] - v[0][0])
                                          if len(v) > 2 and v[-1][0] > v[0][0] else None)}
                          for n, v in got.items()}}
    a.json.write_text(json.dumps(res))
    return 0


# --------------------------------------------------------------------------- the bench
def _env(base: Mapping[str, str], **dds: str) -> dict[str, str]:
    from katazuke.rosenv import ros_environment

    clean = {k: v for k, v in base.items() if not k.startswith(("KATAZUKE_DDS_", "FAST"))}
    clean.pop("KATAZUKE_ROS_ENV", None)
    return ros_environment({**clean, **dds})


def _bridge_argv(camera_hz: float) -> list[str]:
    from katazuke.rosenv import workspace_install

    exe = workspace_install() / "lib" / "katazuke_ros" / "sim_bridge"
    if not exe.exists():
        raise InputError(f"{exe} missing: run scripts/bootstrap.sh")
    return [str(exe), "--ros-args", "-p", f"camera_hz:={camera_hz}", "-p",
            "publish_ground_truth:=false"]


_CAMERA = ("/head_camera/image_raw=sensor_msgs/msg/Image:sensor",
           "/head_camera/camera_info=sensor_msgs/msg/CameraInfo:sensor",
           "/clock=rosgraph_msgs/msg/Clock:clock")


@contextmanager
def _running(argv: list[str], env: Mapping[str, str]) -> Iterator["subprocess.Popen[str]"]:
    from katazuke.testing import finish_process, start_process

    proc = start_process(argv, env=dict(env))
    try:
        yield proc
    finally:
        finish_process(proc)


def _exposure(cfg: NetworkBenchConfig, env: Mapping[str, str], tmp: Path, tag: str) -> dict[str, Any]:
    """The sim bridge plus a counting subscriber on this host; the sockets both own."""
    out = tmp / f"exposure_{tag}.json"
    with _running(_bridge_argv(cfg.camera_hz), env) as bridge:
        counter = start_counter(_CAMERA[:2], out, cfg.startup_timeout_s, env, until=5)
        socks: set[Socket] = set()
        try:
            deadline = time.monotonic() + cfg.startup_timeout_s
            while counter.poll() is None and time.monotonic() < deadline:
                # sample while the graph starts, discovers and streams (sockets come and go)
                pids = descendants(bridge.pid) | descendants(counter.pid)
                socks |= {s for s in list_sockets() if set(s.pids) & pids}
                time.sleep(0.2)
        finally:
            got = read_counter(counter, out, timeout=10)
    ordered = sorted(socks, key=lambda x: (x.proto, x.address, x.port))
    return {"sockets": [asdict(x) for x in ordered],
            "exposed": [asdict(x) for x in ordered if x.exposed], "received": got["topics"]}


def _across(cfg: NetworkBenchConfig, base: Mapping[str, str], tmp: Path) -> dict[str, Any]:
    reason = netns_unavailable()
    if reason:
        return {"skipped": reason}
    with NetnsPair() as ns:
        (ia, ib) = ns.addresses
        pub_lan = _env(base, KATAZUKE_DDS_NETWORK="lan", KATAZUKE_DDS_PEERS=ib,
                       KATAZUKE_DDS_INTERFACE=ia, KATAZUKE_DDS_SHM="0")
        sub_lan = _env(base, KATAZUKE_DDS_NETWORK="lan", KATAZUKE_DDS_PEERS=ia,
                       KATAZUKE_DDS_SHM="0")
        default = _env(base)
        window = cfg.startup_timeout_s + cfg.seconds
        t0 = time.monotonic()
        with _running(ns.exec(0, _bridge_argv(cfg.camera_hz)), pub_lan) as bridge:
            lan = start_counter(_CAMERA, tmp / "lan.json", window, sub_lan,
                                until=int(cfg.seconds * cfg.camera_hz), prefix=ns.exec(1, []))
            got_lan = read_counter(lan, tmp / "lan.json", timeout=window + 30)
            mine = descendants(bridge.pid)
            lan_socks = [x for x in list_sockets(ns.names[0]) if set(x.pids) & mine]
        # the default profile gets as long as the LAN run took from start-up to its last image
        lan_s = time.monotonic() - t0
        with _running(ns.exec(0, _bridge_argv(cfg.camera_hz)), default):
            dflt = start_counter(_CAMERA, tmp / "default.json", lan_s, default, until=1,
                                 prefix=ns.exec(1, []))
            got_def = read_counter(dflt, tmp / "default.json", timeout=lan_s + 30)
    return {"addresses": list(ns.addresses), "lan": got_lan, "default": got_def, "lan_run_s": lan_s,
            "lan_publisher_bound": sorted({s.address for s in lan_socks})}


def run(cfg: NetworkBenchConfig) -> dict[str, Any]:
    """Measure socket exposure (default profile vs Fast DDS built-in) and the LAN switch
    across two network namespaces (about 2 x start-up + ``seconds``).

    Returns:
        ``settings``, ``exposure`` (per configuration: sockets, exposed ones, messages seen),
        ``across`` (LAN and default counts and rates, or ``skipped``) and ``summary``.
    """
    from katazuke.rosenv import ros_environment

    base = ros_environment()
    with tempfile.TemporaryDirectory(prefix="bench_network_") as d:
        tmp = Path(d)
        exposure = {"katazuke default profile": _exposure(cfg, base, tmp, "default"),
                    "Fast DDS built-in, LOCALHOST (peer)": _exposure(cfg, builtin_env(base, tmp),
                                                                      tmp, "builtin")}
        across = _across(cfg, base, tmp)
    summary: dict[str, Any] = {"default_exposed": len(exposure["katazuke default profile"]["exposed"]),
                               "peer_exposed": len(exposure["Fast DDS built-in, LOCALHOST (peer)"]["exposed"])}
    if "skipped" not in across:
        topics = across["lan"]["topics"]
        ticks = topics["/head_camera/camera_info"]["received"]
        summary.update(
            lan_received=sum(t["received"] for t in topics.values()),
            lan_image_ratio=topics["/head_camera/image_raw"]["received"] / ticks if ticks else 0.0,
            default_received=sum(t["received"] for t in across["default"]["topics"].values()))
    return {"settings": {"seconds": cfg.seconds, "camera_hz": cfg.camera_hz, "quick": cfg == QUICK},
            "exposure": exposure, "across": across, "summary": summary}


def markdown(res: dict[str, Any]) -> str:
    """The report of :func:`run`'s results (bars table from :data:`BARS`)."""
    from katazuke.bench.harness import bars_markdown

    s = res["settings"]
    lines = ["# DDS network exposure and the LAN switch", "",
             f"Exposure: the sim bridge (camera {s['camera_hz']:g} Hz) and a subscriber on this host; "
             "`ss -H -uanp` / `-tanp` sockets of their processes. Across namespaces: two network "
             "namespaces joined by a veth pair, the sim bridge in one, a counting subscriber "
             f"(rgb, camera_info, /clock) in the other, shared memory off, {s['seconds']:g} s of "
             "images; then the same with the default profile, as long as the LAN run took.", "",
             "## Bars", "", bars_markdown(evaluate_bars(res, BARS)), "",
             "## Sockets", "", "| configuration | sockets | exposed | exposed addresses |",
             "|---|---|---|---|"]
    for name, e in res["exposure"].items():
        addrs = sorted({f"{x['proto']} {x['address']}" for x in e["exposed"]})
        lines.append(f"| {name} | {len(e['sockets'])} | {len(e['exposed'])} | "
                     f"{', '.join(addrs) or '-'} |")
    a = res["across"]
    lines += ["", "## Across namespaces", ""]
    if "skipped" in a:
        lines.append(f"Not run: {a['skipped']}.")
    else:
        lines += [f"Addresses {a['addresses'][0]} / {a['addresses'][1]}; the LAN publisher "
                  f"(`KATAZUKE_DDS_INTERFACE={a['addresses'][0]}`) bound "
                  f"{', '.join(a['lan_publisher_bound'])}.", "",
                  "| profile | topic | publishers seen | received | rate |", "|---|---|---|---|---|"]
        for prof in ("lan", "default"):
            for t, v in a[prof]["topics"].items():
                rate = f"{v['rate_hz']:.1f} Hz" if v["rate_hz"] else "-"
                lines.append(f"| {prof} | {t} | {a[prof]['publishers_seen'][t]} | "
                             f"{v['received']} | {rate} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:2] != ["count"]:
        raise SystemExit("usage: python -m katazuke.bench.network count --topic ... (internal)")
    raise SystemExit(_count_main(sys.argv[2:]))
