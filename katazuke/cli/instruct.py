"""``katazuke instruct TEXT``: give the running tidy stack a text command, print its answers.

Publishes ``TEXT`` once on ``instruction`` (std_msgs/String; "tidy up", "put the toy in the
red bin", "where is the mug?", "stop") to a stack started with ``katazuke launch
launch/tidy_sim.launch.xml`` (or ``tidy_robot``), then prints what the task manager says
(``say``) and each step of ``task_status`` for ``--follow`` seconds (0 = only the answer).
The spoken-grounding issue feeds the same topic from a microphone.

Example::

    katazuke launch launch/tidy_sim.launch.xml seed:=3 &
    katazuke instruct "put the duck in the red bin" --follow 120
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

__all__ = ["add_arguments", "main", "follow_answers"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", help="the instruction, e.g. \"tidy up\" or \"where is the mug?\"")
    parser.add_argument("--follow", type=float, default=0.0,
                        help="seconds (wall) to keep printing the task's steps (default 0)")
    parser.add_argument("--wait", type=float, default=10.0,
                        help="seconds to wait for the task manager to subscribe and answer "
                             "(default 10)")
    parser.add_argument("--namespace", default="", help="the stack's namespace (default none)")


def main(args: argparse.Namespace) -> int:
    if not args.text.strip():
        print("katazuke instruct: the instruction is empty; say what to do, e.g. \"tidy up\"",
              file=sys.stderr)
        return 2
    from katazuke.ros.probe import Probe
    from katazuke_interfaces.msg import TaskStatus
    from std_msgs.msg import String

    ns = args.namespace.rstrip("/")
    with Probe("katazuke_instruct", namespace=ns) as probe:
        said = probe.collect("say", String, "events")
        status = probe.collect("task_status", TaskStatus, "events")
        pub = probe.publisher("instruction", String, "events")
        if not probe.wait_for(lambda: pub.get_subscription_count() > 0, args.wait):
            print(f"katazuke instruct: nobody subscribes to '{ns}/instruction' within "
                  f"{args.wait:g} s; is the task manager running (katazuke launch "
                  "launch/tidy_sim.launch.xml)?", file=sys.stderr)
            return 1
        pub.publish(String(data=args.text))
        print(f"> {args.text}")
        follow_answers(probe, said, status, args.follow, args.wait)
    return 0


def follow_answers(probe: Any, said: list, status: list, follow_s: float, wait_s: float) -> bool:
    """Print the robot's answers (``say``) and, for ``follow_s`` wall seconds, its task steps.

    Args:
        probe: the :class:`~katazuke.ros.probe.Probe` that collects ``said`` and ``status``.
        said, status: the probe's ``(t, msg)`` lists of ``say`` and ``task_status``.
        follow_s: wall seconds to keep printing after the command (0 = only the answer).
        wait_s: wall seconds to wait for a first answer.

    Returns:
        Whether anything was said.
    """
    shown = 0
    last_step = None
    t_end = time.monotonic() + max(follow_s, 0.0)
    answered = probe.wait_for(lambda: len(said) > 0, wait_s)
    while True:
        for _, m in said[shown:]:
            print(f"robot: {m.data}")
        shown = len(said)
        if status:
            st = status[-1][1]
            step = (st.task_id, st.current_step, st.object_id)
            if follow_s > 0 and step != last_step and st.current_step:
                last_step = step
                done = sum(it.state in (3, 4, 5) for it in st.items)
                print(f"  [{st.task_id}] {done}/{len(st.items)} done: {st.current_step}"
                      + (f" (object {st.object_id})" if st.object_id else ""))
        if time.monotonic() >= t_end:
            break
        probe.wait_for(lambda: len(said) > shown, 0.5)
    if not answered:
        print("(no answer on 'say')")
    return answered
