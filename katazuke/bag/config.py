"""Configs of the recorder and the player (shared by the CLI and the ROS nodes)."""
from __future__ import annotations

from katazuke.config import dataclass, field

__all__ = ["RecordConfig", "PlayConfig", "split_topics"]


@dataclass(frozen=True)
class RecordConfig:
    """What ``katazuke bag record`` / the ``bag_recorder`` node records, and how."""

    output: str = field(default="", metadata={
        "help": "bag directory to create; '' = rosbag2_<UTC date_time> in the working directory"})
    storage: str = field(default="mcap", metadata={"help": "storage plugin: mcap or sqlite3"})
    topics: str = field(default="", metadata={
        "help": "topics to record, separated by spaces or commas (ignored when all is true)"})
    all: bool = field(default=False, metadata={"help": "record every topic that has a publisher"})
    exclude: str = field(default="", metadata={
        "help": "topics never recorded with all=true, separated by spaces or commas"})
    flush_interval_s: float = field(default=0.5, metadata={
        "help": "seconds between crash-safety flushes (MCAP chunk close / sqlite3 commit)"})
    discovery_period_s: float = field(default=0.25, metadata={
        "help": "seconds between scans of the ROS graph for new topics and publishers"})


@dataclass(frozen=True)
class PlayConfig:
    """How ``katazuke bag play`` / the ``bag_player`` node replays a bag."""

    bag: str = field(default="", metadata={"help": "bag directory, .mcap/.db3 file or ROS 1 .bag"})
    rate: float = field(default=1.0, metadata={"help": "playback speed factor (> 0)"})
    loop: bool = field(default=False, metadata={"help": "restart at the end until stopped"})
    topics: str = field(default="", metadata={
        "help": "only these topics, separated by spaces or commas ('' = all)"})
    start_offset_s: float = field(default=0.0, metadata={
        "help": "skip this many seconds (bag time) from the start of the bag"})
    clock_hz: float = field(default=0.0, metadata={
        "help": "publish /clock with the bag time at this rate (Hz); 0 = no /clock"})
    delay_s: float = field(default=0.0, metadata={
        "help": "seconds to wait after creating publishers, before the first message"})
    wait_for_subscribers_s: float = field(default=0.0, metadata={
        "help": "wait up to this many seconds until every publisher has a subscriber"})
    spin_ms: float = field(default=2.0, metadata={
        "help": "busy-wait window before each deadline (ms); sleep before it"})
    realtime: bool = field(default=False, metadata={
        "help": "run the playback thread under SCHED_FIFO (needs CAP_SYS_NICE/root): keeps "
                "the timing when other processes load the CPUs"})


def split_topics(text: str) -> list[str]:
    """``"/a, /b /c"`` -> ``["/a", "/b", "/c"]``."""
    return [t for t in text.replace(",", " ").split() if t]
