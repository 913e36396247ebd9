"""Synthetic speech with Debian's ``espeak-ng`` (test clips, benchmark sets, the robot's voice)."""
from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np

from katazuke.errors import ConfigError, InputError

__all__ = ["synthesize"]


def synthesize(text: str, voice: str = "en-us", speed_wpm: int = 160, pitch: int = 50
               ) -> tuple[np.ndarray, int]:
    """Speak ``text`` with espeak-ng.

    Args:
        text: what to say (non-empty).
        voice: espeak-ng voice, optionally with a variant (``"en-gb-scotland+m3"``).
        speed_wpm: words per minute (80-450).
        pitch: 0-99.

    Returns:
        ``(samples (n,) float32 mono in [-1, 1], sample_rate)`` (espeak-ng's 22050 Hz).

    Raises:
        ConfigError: espeak-ng is not installed (``apt-get install espeak-ng``).
        InputError: empty text, an unknown voice, or out-of-range speed/pitch.
    """
    import soundfile as sf

    if not text.strip():
        raise InputError("synthesize() needs non-empty text")
    if not 80 <= speed_wpm <= 450 or not 0 <= pitch <= 99:
        raise InputError(f"speed_wpm must be in [80, 450] and pitch in [0, 99], got "
                         f"{speed_wpm}, {pitch}")
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ConfigError("espeak-ng is not installed: apt-get install espeak-ng "
                          "(scripts/bootstrap.sh installs it)")
    proc = subprocess.run([exe, "-v", voice, "-s", str(int(speed_wpm)), "-p", str(int(pitch)),
                           "--stdout", text], capture_output=True, timeout=60)
    err = proc.stderr.decode(errors="replace").strip()
    if proc.returncode != 0 or not proc.stdout or "voice" in err.lower():
        raise InputError(f"espeak-ng failed for voice {voice!r}: {err or 'no audio'} "
                         "(list voices with `espeak-ng --voices=en`)")
    data, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    return (data if data.ndim == 1 else data.mean(axis=1)).astype(np.float32), int(sr)
