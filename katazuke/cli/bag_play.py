"""``katazuke bag play``: replay a bag with its recorded timing.

Publishes the stored serialized messages directly (no deserialization), scheduled on a
monotonic clock (sleep, then spin-wait the last ``--spin-ms``). ROS 1 bags are converted
to ROS 2 CDR on the fly. Topics whose message type is not installed are skipped with one
warning each.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", help="bag directory, .mcap/.db3 file or ROS 1 .bag")
    parser.add_argument("-r", "--rate", type=float, default=1.0, help="speed factor (default 1.0)")
    parser.add_argument("-l", "--loop", action="store_true", help="loop until Ctrl-C")
    parser.add_argument("--topics", nargs="+", default=[], metavar="TOPIC",
                        help="only replay these topics")
    parser.add_argument("--start-offset", type=float, default=0.0, metavar="S",
                        help="start S seconds into the bag")
    parser.add_argument("--clock", type=float, nargs="?", const=100.0, default=0.0, metavar="HZ",
                        help="publish /clock with the bag time (default 100 Hz when given)")
    parser.add_argument("--delay", type=float, default=0.0, metavar="S",
                        help="wait S seconds after creating publishers")
    parser.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S",
                        help="wait up to S seconds until every topic has a subscriber")
    parser.add_argument("--spin-ms", type=float, default=2.0,
                        help="busy-wait window before each deadline in ms (default 2)")
    parser.add_argument("--realtime", action="store_true",
                        help="play under SCHED_FIFO (needs root/CAP_SYS_NICE) for steady timing "
                             "on a loaded machine")
    parser.add_argument("--stats-json", default="", metavar="PATH",
                        help="write per-topic counts and publish-time errors to PATH")


def main(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from katazuke.bag.config import PlayConfig
    from katazuke.bag.reader import open_bag
    from katazuke.bag.ros import Player

    config = PlayConfig(bag=args.bag, rate=args.rate, loop=args.loop, topics=" ".join(args.topics),
                        start_offset_s=args.start_offset, clock_hz=args.clock or 0.0,
                        delay_s=args.delay, wait_for_subscribers_s=args.wait_for_subscribers,
                        spin_ms=args.spin_ms, realtime=args.realtime)
    with open_bag(args.bag) as bag:
        if bag.summary.recovery:
            print(f"note: {bag.summary.recovery}", file=sys.stderr)
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        node = rclpy.create_node("katazuke_bag_player")
        try:
            player = Player(node, bag, config)

            def on_signal(signum: int, frame: object) -> None:
                del signum, frame
                player.stop()

            signal.signal(signal.SIGINT, on_signal)
            signal.signal(signal.SIGTERM, on_signal)
            if not player.publishers:
                print("nothing to play: none of the selected topics has a message type available "
                      "here", file=sys.stderr)
            result = player.play()
        finally:
            node.destroy_node()
            rclpy.try_shutdown()
    t = result.timing.summary_ms()
    n = sum(result.published.values())
    print(f"published {n} messages on {len(result.published)} topics"
          + (f", {result.clock_ticks} /clock ticks" if result.clock_ticks else "")
          + (f"; publish-time error median {t['median_ms']:.3f} ms, p99 {t['p99_ms']:.3f} ms"
             if n else ""))
    if args.stats_json:
        with open(args.stats_json, "w", encoding="utf-8") as fh:
            json.dump({"published": result.published, "skipped": result.skipped,
                       "clock_ticks": result.clock_ticks, "loops": result.loops, "timing": t,
                       "publish_call": result.publish_call_s.summary_ms()}, fh, indent=2)
    return 0
