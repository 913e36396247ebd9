"""``katazuke bag record``: record topics into a rosbag2 directory (MCAP or sqlite3).

Stops cleanly on Ctrl-C / SIGTERM (or after ``--duration``), writing the MCAP index and
``metadata.yaml``. If the process is killed instead, the bag is still readable up to the
last flush (see ``katazuke bag info``).
"""
from __future__ import annotations

import argparse
import datetime
import signal
import sys
import time

from katazuke.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topics", nargs="*", metavar="TOPIC", help="topics to record")
    parser.add_argument("-a", "--all", action="store_true", help="record every topic with a publisher")
    parser.add_argument("-o", "--output", default="",
                        help="bag directory to create (default: rosbag2_<date>_<time>)")
    parser.add_argument("-s", "--storage", default="mcap", choices=("mcap", "sqlite3"),
                        help="storage plugin (default: mcap)")
    parser.add_argument("--exclude", nargs="*", default=[], metavar="TOPIC",
                        help="topics not recorded with --all")
    parser.add_argument("--flush-interval", type=float, default=0.5, metavar="S",
                        help="seconds between crash-safety flushes (default 0.5)")
    parser.add_argument("--duration", type=float, default=0.0, metavar="S",
                        help="stop after S seconds (default: until Ctrl-C / SIGTERM)")
    parser.add_argument("--drain-timeout", type=float, default=10.0, metavar="S",
                        help="on stop, keep writing already-received samples for up to S seconds "
                             "(until 0.5 s without new ones); a second Ctrl-C skips it")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    if args.all and args.topics:
        raise InputError("give either --all or a list of topics, not both")
    if not args.all and not args.topics:
        raise InputError("nothing to record: name topics or use --all")
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.signals import SignalHandlerOptions
    from tqdm import tqdm

    from katazuke.bag.ros import Recorder
    from katazuke.bag.writer import BagWriter

    out = args.output or datetime.datetime.now(datetime.timezone.utc).strftime(
        "rosbag2_%Y_%m_%d-%H_%M_%S")
    writer = BagWriter(out, storage=args.storage, flush_interval_s=args.flush_interval)
    stop = {"flag": False, "count": 0}

    def on_signal(signum: int, frame: object) -> None:
        del signum, frame
        stop["flag"] = True
        stop["count"] += 1  # a second Ctrl-C skips draining

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("katazuke_bag_recorder")
    recorder = None
    try:
        recorder = Recorder(node, writer, topics=args.topics, record_all=args.all,
                            exclude=args.exclude)
        executor = MultiThreadedExecutor(num_threads=2)
        executor.add_node(node)
        t_end = time.monotonic() + args.duration if args.duration > 0 else float("inf")
        bar = tqdm(desc=f"recording {out}", unit="msg", disable=args.no_progress, file=sys.stderr)
        last = 0
        while not stop["flag"] and time.monotonic() < t_end:
            executor.spin_once(timeout_sec=0.05)
            total = sum(recorder.received.values())
            if total != last:
                bar.update(total - last)
                last = total
        # Drain: samples the middleware already holds (reliable readers keep them all)
        # still go into the bag, until the topics have been quiet for a moment; a
        # recorder that fell behind under load would otherwise drop its backlog on stop.
        drain_end = time.monotonic() + args.drain_timeout
        quiet_since = time.monotonic()
        while stop["count"] < 2 and time.monotonic() < drain_end:
            executor.spin_once(timeout_sec=0.05)
            total = sum(recorder.received.values())
            if total != last:
                bar.update(total - last)
                last, quiet_since = total, time.monotonic()
            elif time.monotonic() - quiet_since > 0.5:
                break
        bar.close()
    finally:
        if recorder is not None:
            recorder.close()
        node.destroy_node()
        rclpy.try_shutdown()
        stats = writer.close()
    total = sum(stats.written.values())
    print(f"wrote {total} messages on {len(stats.written)} topics to {out} ({args.storage})")
    lost = recorder.lost if recorder is not None else {}
    for topic, n in sorted(stats.written.items()):
        print(f"  {topic}: {n}" + (f" ({lost[topic]} lost in transport: gaps in the stamps)"
                                   if lost.get(topic) else ""))
    return 0
