"""``katazuke say TEXT``: speak a command into the running stack's microphone topic.

For a hands-free demo of the voice stack (``katazuke launch launch/tidy_sim.launch.xml
voice:=true``): ``TEXT`` is synthesised with Debian's ``espeak-ng`` into a WAV file under
``--cache`` and its path is published on ``play_file``, so the stack's ``audio_file_player``
plays it on the sim clock into ``audio``, where the recogniser hears it like any speech.
Then the robot's answers (``say``) and, with ``--follow``, its task steps are printed, as
``katazuke instruct`` does for typed text.

Example::

    katazuke launch launch/tidy_sim.launch.xml seed:=3 voice:=true &
    katazuke say "put the duck in the red bin" --follow 120
    katazuke say "stop"
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

__all__ = ["add_arguments", "main", "speech_file"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", help="what to say, e.g. \"put the duck in the red bin\"")
    parser.add_argument("--voice", default="en-us",
                        help="espeak-ng voice (default en-us; `espeak-ng --voices=en` lists them)")
    parser.add_argument("--speed", type=int, default=150, help="words per minute (default 150)")
    parser.add_argument("--follow", type=float, default=0.0,
                        help="seconds (wall) to keep printing the task's steps (default 0)")
    parser.add_argument("--wait", type=float, default=30.0,
                        help="seconds to wait for the player to subscribe and for an answer "
                             "(default 30: recognition takes a few seconds on 2 cores)")
    parser.add_argument("--namespace", default="", help="the stack's namespace (default none)")
    parser.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache",
                                                        "katazuke", "say"),
                        help="folder of the synthesised WAV files (default ~/.cache/katazuke/say)")


def speech_file(text: str, voice: str, speed_wpm: int, cache: str | Path) -> Path:
    """The WAV file of ``text`` spoken by espeak-ng, made once per (text, voice, speed).

    Raises:
        ConfigError: espeak-ng is missing. InputError: empty text, unknown voice, bad speed.
    """
    import soundfile as sf

    from katazuke.perception.speech import synthesize

    key = hashlib.sha1(f"{voice}|{speed_wpm}|{text}".encode()).hexdigest()[:16]
    path = Path(cache) / f"{key}.wav"
    if not path.is_file():
        x, sr = synthesize(text, voice, speed_wpm)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.wav")
        sf.write(str(tmp), x, sr, subtype="PCM_16")
        os.replace(tmp, path)
    return path


def main(args: argparse.Namespace) -> int:
    from katazuke.errors import KatazukeError

    if not args.text.strip():
        print("katazuke say: the text is empty; say what to do, e.g. \"tidy up\"", file=sys.stderr)
        return 2
    try:
        wav = speech_file(args.text, args.voice, args.speed, args.cache)
    except KatazukeError as exc:
        print(f"katazuke say: {exc}", file=sys.stderr)
        return 2
    from katazuke.cli.instruct import follow_answers
    from katazuke.ros.probe import Probe
    from katazuke_interfaces.msg import TaskStatus
    from std_msgs.msg import String

    ns = args.namespace.rstrip("/")
    with Probe("katazuke_say", namespace=ns) as probe:
        said = probe.collect("say", String, "events")
        status = probe.collect("task_status", TaskStatus, "events")
        pub = probe.publisher("play_file", String, "events")
        if not probe.wait_for(lambda: pub.get_subscription_count() > 0, args.wait):
            print(f"katazuke say: nobody subscribes to '{ns}/play_file' within {args.wait:g} s; "
                  "is the voice stack running (katazuke launch launch/tidy_sim.launch.xml "
                  "voice:=true)?", file=sys.stderr)
            return 1
        pub.publish(String(data=str(wav)))
        print(f"> (spoken) {args.text}")
        follow_answers(probe, said, status, args.follow, args.wait)
    return 0
