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
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from katazuke.bag.config import PlayConfig
    from katazuke.bag.reader import open_bag
    from katazuke.bag.ros import DeterministicConfig, Player
    from katazuke.errors import InputError

    config = PlayConfig(bag=args.bag, rate=args.rate, loop=args.loop, topics=" ".join(args.topics),
                        start_offset_s=args.start_offset, clock_hz=args.clock or 0.0,
                        delay_s=args.delay, wait_for_subscribers_s=args.wait_for_subscribers,
                        spin_ms=args.spin_ms, realtime=args.realtime)
    det = DeterministicConfig(enabled=args.deterministic, frame_topic=args.frame_topic,
                              ack_topics=" ".join(args.ack_topics), ack_timeout_s=args.ack_timeout,
                              discovery_timeout_s=args.discovery_timeout,
                              give_up_after=args.give_up_after)
    if args.outputs and not args.deterministic:
        raise InputError("--outputs needs --deterministic (the outputs are the acknowledgements)")
    with open_bag(args.bag) as bag:
        if bag.summary.recovery:
            print(f"note: {bag.summary.recovery}", file=sys.stderr)
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        node = rclpy.create_node("katazuke_bag_player")
        spinner = None
        try:
            player = Player(node, bag, config, deterministic=det)
            if det.enabled:   # the acknowledgements arrive through the executor
                spinner = _Spinner(node)

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
            if spinner is not None:
                spinner.stop()
            node.destroy_node()
            rclpy.try_shutdown()
    t = result.timing.summary_ms()
    n = sum(result.published.values())
    print(f"published {n} messages on {len(result.published)} topics"
          + (f", {result.clock_ticks} /clock ticks" if result.clock_ticks else "")
          + (f"; publish-time error median {t['median_ms']:.3f} ms, p99 {t['p99_ms']:.3f} ms"
             if n and not det.enabled else ""))
    late = sum(result.ack_timeouts.values())
    if det.enabled:
        print(f"deterministic: {result.frames} frames on {det.frame_topic}; acknowledged "
              + ", ".join(f"{k} {v}" for k, v in sorted(result.acked.items()))
              + (f"; NOT acknowledged in time: "
                 + ", ".join(f"{k} {v}" for k, v in sorted(result.ack_timeouts.items()))
                 if late else "") + f"; {result.wall_s:.1f} s wall")
    if args.outputs:
        _write_outputs(args.outputs, result)
    if args.stats_json:
        with open(args.stats_json, "w", encoding="utf-8") as fh:
            json.dump({"published": result.published, "skipped": result.skipped,
                       "clock_ticks": result.clock_ticks, "loops": result.loops, "timing": t,
                       "publish_call": result.publish_call_s.summary_ms(),
                       "frames": result.frames, "acked": result.acked,
                       "ack_timeouts": result.ack_timeouts, "wall_s": result.wall_s},
                      fh, indent=2)
    return 1 if late else 0


class _Spinner:
    """Spin ``node`` on a background thread until :meth:`stop`."""

    def __init__(self, node) -> None:
        import threading

        from rclpy.executors import SingleThreadedExecutor

        self._executor = SingleThreadedExecutor(context=node.context)
        self._executor.add_node(node)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bag-play-spin", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            self._executor.spin_once(timeout_sec=0.1)

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=5.0)
        self._executor.shutdown()


def _write_outputs(path: str, result) -> None:
    """The acknowledging messages into a new bag, logged at their header stamps."""
    from katazuke.bag.writer import BagWriter

    writer = BagWriter(path)
    try:
        for topic, msgs in sorted(result.outputs.items()):
            writer.add_topic(topic, result.output_types[topic])
            for stamp, data in msgs:
                writer.write(topic, stamp, data)
    finally:
        writer.close()
    print(f"outputs: {sum(len(m) for m in result.outputs.values())} messages -> {path}")
