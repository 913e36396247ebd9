"""``katazuke bag play``: replay a bag with its recorded timing.

Publishes the stored serialized messages directly (no deserialization), scheduled on a
monotonic clock (sleep, then spin-wait the last ``--spin-ms``). ROS 1 bags are converted
to ROS 2 CDR on the fly. Topics whose message type is not installed are skipped with one
warning each.

``--deterministic`` replays lock-step with the consumers instead (every frame processed,
two replays give the same outputs; see :mod:`katazuke.bag.ros`): start the stack with
``deterministic:=true`` first. ``--outputs DIR`` then writes the acknowledging messages
(e.g. detections and object maps) into a new bag for comparison; the exit status is 1
when a frame was not acknowledged in time.
"""
from __future__ import annotations

import argparse


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
    det = parser.add_argument_group("deterministic replay")
    det.add_argument("--deterministic", action="store_true",
                     help="lock-step with the consumers: publish up to the next frame, wait "
                          "until the ack topics answered the frame's stamp (needs the stack "
                          "started with deterministic:=true)")
    det.add_argument("--frame-topic", default="/head_camera/image_raw", metavar="TOPIC",
                     help="the frames the consumers acknowledge (default /head_camera/image_raw)")
    det.add_argument("--ack-topics", nargs="+", default=["/detections", "/object_map"],
                     metavar="TOPIC", help="topics answering each frame with its header stamp "
                                           "(default /detections /object_map)")
    det.add_argument("--ack-timeout", type=float, default=30.0, metavar="S",
                     help="longest wait for one frame's acknowledgements (default 30 s)")
    det.add_argument("--give-up-after", type=int, default=3, metavar="N",
                     help="stop with an error after N frames in a row were not acknowledged "
                          "(default 3; 0 = never)")
    det.add_argument("--discovery-timeout", type=float, default=60.0, metavar="S",
                     help="longest wait for the consumers to appear (default 60 s)")
    det.add_argument("--outputs", default="", metavar="DIR",
                     help="write the acknowledging messages into a new bag DIR (MCAP)")


def main(args: argparse.Namespace) -> int:
    from katazuke.bag.config import PlayConfig
    from katazuke.bag.ros import DeterministicConfig, play_bag

    config = PlayConfig(bag=args.bag, rate=args.rate, loop=args.loop, topics=" ".join(args.topics),
                        start_offset_s=args.start_offset, clock_hz=args.clock or 0.0,
                        delay_s=args.delay, wait_for_subscribers_s=args.wait_for_subscribers,
                        spin_ms=args.spin_ms, realtime=args.realtime)
    det = DeterministicConfig(enabled=args.deterministic, frame_topic=args.frame_topic,
                              ack_topics=" ".join(args.ack_topics), ack_timeout_s=args.ack_timeout,
                              discovery_timeout_s=args.discovery_timeout,
                              give_up_after=args.give_up_after)
    return play_bag(config, det, outputs=args.outputs, stats_json=args.stats_json)
