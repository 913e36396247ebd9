"""Katazuke's Fast DDS participant profile: what the stack exposes on the network.

Two network modes, chosen by one switch, ``KATAZUKE_DDS_NETWORK``:

- ``localhost`` (default): shared memory (segments sized for the camera streams) plus unicast
  UDPv4 on 127.0.0.1 only, **no multicast**, discovery through initial peers on 127.0.0.1.
  No socket is bound to a LAN address or to 0.0.0.0. (Fast DDS binds multicast input sockets
  to 0.0.0.0 whatever an interface allowlist says, so multicast is off, not filtered.)
- ``lan``: the robot is opened to a LAN on purpose (e.g. perception on a second computer).
  UDPv4 on every interface, or only on ``KATAZUKE_DDS_INTERFACE`` (an IPv4 address of this
  machine) plus loopback; with ``KATAZUKE_DDS_PEERS`` (comma-separated IPv4 addresses or host
  names of the other computers) discovery is unicast to those peers and multicast stays off;
  without peers, standard multicast discovery on the LAN.

``KATAZUKE_DDS_SHM=0`` turns shared memory off in either mode (UDP only), so that traffic
between processes on one machine really goes through the network stack (used by the
two-namespace check of ``katazuke bench network``).

The default profile is shipped as ``katazuke/ros/fastdds_profile.xml`` (for a system ROS
install: ``export FASTRTPS_DEFAULT_PROFILES_FILE=<repo>/katazuke/ros/fastdds_profile.xml`` and
``ROS_AUTOMATIC_DISCOVERY_RANGE=SYSTEM_DEFAULT``); other settings are rendered by
:func:`profile_xml` into a per-user folder by :func:`profile_path`.

Why ``ROS_AUTOMATIC_DISCOVERY_RANGE=SYSTEM_DEFAULT`` with these profiles: rmw_fastrtps (Jazzy)
edits the participant QoS after loading the XML. ``LOCALHOST`` appends an "any address"
metatraffic locator (measured: each process then holds a UDP socket on 0.0.0.0 and one on the
LAN address) and ``SUBNET`` / ``LOCALHOST`` add ``ROS_STATIC_PEERS``; ``SYSTEM_DEFAULT``
leaves the profile alone. ``ROS_STATIC_PEERS`` is therefore replaced by ``KATAZUKE_DDS_PEERS``.
"""
from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from katazuke.errors import ConfigError

__all__ = ["DdsNetwork", "NETWORK_VAR", "PEERS_VAR", "INTERFACE_VAR", "SHM_VAR", "MODES",
           "SHM_SEGMENT_BYTES", "UDP_BUFFER_BYTES", "MAX_PARTICIPANTS", "SHIPPED_PROFILE", "dds_network_from_env",
           "profile_xml", "profile_folder", "profile_path", "ENV_HELP"]

NETWORK_VAR = "KATAZUKE_DDS_NETWORK"
PEERS_VAR = "KATAZUKE_DDS_PEERS"
INTERFACE_VAR = "KATAZUKE_DDS_INTERFACE"
SHM_VAR = "KATAZUKE_DDS_SHM"
MODES = ("localhost", "lan")
#: Shared-memory segment per participant (bytes): one head-camera tick (rgb 230 KB + depth
#: 307 KB) does not fit Fast DDS's default 512 KiB; 8 MiB holds several ticks.
SHM_SEGMENT_BYTES = 8 * 2**20
#: Participants (processes) per domain and host that unicast discovery reaches
#: (``maxInitialPeersRange``): ports 7400 + 250 * domain + 10 + 2 * id, id < this.
MAX_PARTICIPANTS = 32
#: UDP socket buffers when UDP carries user data (lan mode or no shared memory), bytes.
UDP_BUFFER_BYTES = 4 * 2**20
SHIPPED_PROFILE = Path(__file__).resolve().parent / "fastdds_profile.xml"

#: Help text for the environment switches (shown by ``katazuke env --help``).
ENV_HELP = f"""\
DDS network (Fast DDS profile applied by katazuke unless FASTRTPS_DEFAULT_PROFILES_FILE is set):
  {NETWORK_VAR}=localhost  default: shared memory + UDP on 127.0.0.1, no multicast, no LAN socket
  {NETWORK_VAR}=lan        open the robot to a LAN on purpose (e.g. perception on a 2nd computer)
  {PEERS_VAR}=IP,...       lan: unicast discovery of these computers (multicast stays off);
                                  unset: multicast discovery on the LAN
  {INTERFACE_VAR}=IP       lan: use only this local IPv4 address (plus loopback)
  {SHM_VAR}=0              no shared memory (UDP only), in either mode
"""


@dataclass(frozen=True)
class DdsNetwork:
    """What the Fast DDS participants of this machine expose.

    Attributes:
        mode: ``"localhost"`` or ``"lan"``.
        peers: lan only: IPv4 addresses of the other computers (unicast discovery).
        interface: lan only: the local IPv4 address to use ("" = every interface).
        shm: shared-memory transport on (same-host traffic bypasses UDP).
    """

    mode: str = field(default="localhost", metadata={"help": "localhost | lan"})
    peers: tuple[str, ...] = field(default=(), metadata={"help": "lan: peer IPv4 addresses"})
    interface: str = field(default="", metadata={"help": "lan: local IPv4 address to use"})
    shm: bool = field(default=True, metadata={"help": "shared-memory transport on"})

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"{NETWORK_VAR} must be one of {', '.join(MODES)}; got {self.mode!r}")
        if self.mode == "localhost" and (self.peers or self.interface):
            raise ConfigError(f"{PEERS_VAR} / {INTERFACE_VAR} open DDS to a LAN: set "
                              f"{NETWORK_VAR}=lan as well (default is localhost only)")
        for ip in self.peers + ((self.interface,) if self.interface else ()):
            try:
                ipaddress.IPv4Address(ip)
            except ValueError:
                raise ConfigError(f"{PEERS_VAR} / {INTERFACE_VAR}: {ip!r} is not an IPv4 "
                                  "address") from None


def _resolve(name: str) -> str:
    try:
        ipaddress.IPv4Address(name)
        return name
    except ValueError:
        pass
    try:
        return socket.gethostbyname(name)
    except OSError:
        raise ConfigError(f"{PEERS_VAR}: cannot resolve host {name!r} to an IPv4 address") from None


def dds_network_from_env(env: Mapping[str, str]) -> DdsNetwork:
    """The :class:`DdsNetwork` the ``KATAZUKE_DDS_*`` variables of ``env`` ask for.

    Raises:
        ConfigError: an unknown mode, a bad address, ``ROS_STATIC_PEERS`` or
            ``ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET`` (they would fight the profile; the error
            names the katazuke switch to use instead).
    """
    mode = env.get(NETWORK_VAR, "").strip().lower() or "localhost"
    peers = tuple(_resolve(p.strip()) for p in env.get(PEERS_VAR, "").split(",") if p.strip())
    shm_text = env.get(SHM_VAR, "1").strip().lower()
    if shm_text not in ("0", "1", "on", "off", "true", "false", ""):
        raise ConfigError(f"{SHM_VAR} must be 1 or 0; got {shm_text!r}")
    if env.get("ROS_STATIC_PEERS", "").strip():
        raise ConfigError(f"ROS_STATIC_PEERS is not used with katazuke's Fast DDS profile: set "
                          f"{NETWORK_VAR}=lan and {PEERS_VAR}=<ip,...> instead")
    if env.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").strip().upper() == "SUBNET":
        raise ConfigError(f"ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET does not open katazuke's DDS "
                          f"profile to the LAN: unset it and set {NETWORK_VAR}=lan")
    return DdsNetwork(mode=mode, peers=peers, interface=env.get(INTERFACE_VAR, "").strip(),
                      shm=shm_text not in ("0", "off", "false"))


def _locator(address: str, indent: str) -> str:
    return (f"{indent}<locator>\n{indent}  <udpv4>\n{indent}    <address>{address}</address>\n"
            f"{indent}  </udpv4>\n{indent}</locator>\n")


_HEADER = """\
<?xml version="1.0" encoding="UTF-8" ?>
<!--
  Katazuke's Fast DDS participant profile ({what}).
  Generated by katazuke/ros/fastdds.py (profile_xml); katazuke.rosenv applies it through
  FASTRTPS_DEFAULT_PROFILES_FILE / FASTDDS_DEFAULT_PROFILES_FILE unless you set your own.
  With a system ROS install:
    export FASTRTPS_DEFAULT_PROFILES_FILE=<repo>/katazuke/ros/fastdds_profile.xml
    export ROS_AUTOMATIC_DISCOVERY_RANGE=SYSTEM_DEFAULT   # LOCALHOST would add a 0.0.0.0 socket

{shm}  Network: {network}
-->
"""
_SHM_NOTE = """\
  Shared memory: one segment per participant, 512 KiB by default; one head-camera tick
  (rgb 230 KB + depth 307 KB) does not fit, and with best-effort sensor QoS the rgb sample was
  recycled before slow readers took it (a detector fed at 15 Hz received 6-10 Hz, silently).
  8 MiB holds several ticks.
"""


def profile_xml(net: DdsNetwork = DdsNetwork()) -> str:
    """The Fast DDS XML profile (default participant profile) for ``net``.

    Args:
        net: the network settings.

    Returns:
        The XML text; ``profile_xml()`` is the shipped ``fastdds_profile.xml``.
    """
    local_only = net.mode == "localhost"
    unicast_discovery = local_only or bool(net.peers)
    if local_only:
        what, network = "default: this host only", (
            "UDPv4 on 127.0.0.1 only, no multicast (Fast DDS binds multicast input sockets\n"
            "  to 0.0.0.0 whatever the allowlist says), discovery via initial peers on 127.0.0.1\n"
            f"  (participant ids 0-{MAX_PARTICIPANTS - 1} of each domain).")
    else:
        iface = f"on {net.interface} and 127.0.0.1" if net.interface else "on every interface"
        disc = (f"unicast discovery of {', '.join(net.peers)}, no multicast" if net.peers
                else "multicast discovery on the LAN")
        what, network = f"{NETWORK_VAR}=lan", f"LAN opened on purpose: UDPv4 {iface}, {disc}."
    if not net.shm:
        what += f", {SHM_VAR}=0"
        network += "\n  No shared memory: all traffic goes through UDP."
    if not (local_only and net.shm):
        network += (f"\n  UDP socket buffers {UDP_BUFFER_BYTES // 2**20} MiB (capped by the kernel: raise "
                    "net.core.rmem_max / wmem_max\n  to at least that for camera streams).")
    allow = ["127.0.0.1"] if local_only else (["127.0.0.1", net.interface] if net.interface else [])
    out = [_HEADER.format(what=what, network=network, shm=_SHM_NOTE if net.shm else ""),
           '<profiles xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles">\n',
           "  <transport_descriptors>\n"]
    transports = []
    if net.shm:
        transports.append("katazuke_shm")
        out.append("    <transport_descriptor>\n      <transport_id>katazuke_shm</transport_id>\n"
                   f"      <type>SHM</type>\n      <segment_size>{SHM_SEGMENT_BYTES}</segment_size>\n"
                   "    </transport_descriptor>\n")
    transports.append("katazuke_udp")
    out.append("    <transport_descriptor>\n      <transport_id>katazuke_udp</transport_id>\n"
               "      <type>UDPv4</type>\n")
    if not (local_only and net.shm):
        # UDP carries the images: a 230 KB rgb frame overflows Linux's default 208 KiB socket
        # buffer (the kernel caps these at net.core.rmem_max / wmem_max).
        out.append(f"      <sendBufferSize>{UDP_BUFFER_BYTES}</sendBufferSize>\n"
                   f"      <receiveBufferSize>{UDP_BUFFER_BYTES}</receiveBufferSize>\n")
    if unicast_discovery:
        # Initial peers are tried on the ports of participant ids 0 .. range - 1.
        out.append(f"      <maxInitialPeersRange>{MAX_PARTICIPANTS}</maxInitialPeersRange>\n")
    if allow:
        out.append("      <interfaceWhiteList>\n")
        out += [f"        <address>{a}</address>\n" for a in allow]
        out.append("      </interfaceWhiteList>\n")
    out.append("    </transport_descriptor>\n  </transport_descriptors>\n"
               '  <participant profile_name="katazuke_default" is_default_profile="true">\n'
               "    <rtps>\n")
    if unicast_discovery:
        # An explicit metatraffic unicast locator: Fast DDS then creates no multicast one.
        # The user-data locator lists stay empty so that Fast DDS adds the shared-memory
        # locators; the allowlist keeps the UDP ones on the allowed addresses.
        first = "127.0.0.1" if local_only else (net.interface or "")
        out.append("      <builtin>\n        <metatrafficUnicastLocatorList>\n")
        out.append(_locator(first, " " * 10) if first else "          <locator/>\n")
        out.append("        </metatrafficUnicastLocatorList>\n        <initialPeersList>\n")
        for peer in dict.fromkeys(("127.0.0.1",) + net.peers):
            out.append(_locator(peer, " " * 10))
        out.append("        </initialPeersList>\n      </builtin>\n")
    out.append("      <userTransports>\n")
    out += [f"        <transport_id>{t}</transport_id>\n" for t in transports]
    out.append("      </userTransports>\n      <useBuiltinTransports>false</useBuiltinTransports>\n")
    out.append("    </rtps>\n  </participant>\n</profiles>\n")
    return "".join(out)


def profile_folder() -> Path:
    """The private per-user folder of generated profiles."""
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    return base / f"katazuke-{os.getuid()}"


def profile_path(net: DdsNetwork) -> Path:
    """A file holding :func:`profile_xml` for ``net``: the shipped profile for the default,
    else a generated one in a private per-user folder (``$XDG_RUNTIME_DIR`` or the temp dir).

    Raises:
        ConfigError: the per-user folder exists but belongs to someone else.
    """
    if net == DdsNetwork():
        return SHIPPED_PROFILE
    text = profile_xml(net)
    folder = profile_folder()
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid():
        raise ConfigError(f"{folder} belongs to another user: remove it or set XDG_RUNTIME_DIR")
    path = folder / f"fastdds-{hashlib.sha256(text.encode()).hexdigest()[:16]}.xml"
    if not path.is_file() or path.read_text() != text:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path
