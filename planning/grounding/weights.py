"""The grounding weights file: network, calibration and provenance in one ``.pt``."""
from __future__ import annotations

import dataclasses
import os
import zipfile
from pathlib import Path
from typing import Any

import torch

from katazuke.errors import KatazukeError
from katazuke.planning.grounding.model import GroundingNet, ModelDims

__all__ = ["GroundingError", "FORMAT", "save_weights", "load_weights", "default_weights_path"]

FORMAT = "katazuke-grounding-1"


class GroundingError(KatazukeError):
    """Grounding cannot run: missing or corrupt weights, bad input."""


def default_weights_path() -> Path:
    """The committed weights, ``planning/grounding/weights/grounding.pt``."""
    return Path(__file__).resolve().parent / "weights" / "grounding.pt"


def save_weights(path: str | os.PathLike, net: GroundingNet, calibration: dict[str, Any],
                 provenance: dict[str, Any]) -> None:
    """Write the network (float32 state), its calibration and how it was made."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    torch.save({"format": FORMAT, "dims": dataclasses.asdict(net.dims),
                "state": {k: v.detach().clone() for k, v in net.state_dict().items()},
                "calibration": dict(calibration), "provenance": dict(provenance)}, tmp)
    os.replace(tmp, p)


def load_weights(path: str | os.PathLike) -> tuple[GroundingNet, dict[str, Any], dict[str, Any]]:
    """Load ``(net, calibration, provenance)``.

    Raises:
        GroundingError: the file is missing, is not a grounding weights file, or does not
            fit the network; the message names the file and how to fix it.
    """
    p = Path(path)
    fix = ("retrain with `katazuke train grounding` or restore the committed file "
           "(git checkout -- planning/grounding/weights/grounding.pt)")
    if not p.is_file():
        raise GroundingError(f"grounding weights {p} not found; {fix}")
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile,
            Exception) as exc:      # torch raises many kinds for a damaged file
        raise GroundingError(f"grounding weights {p} are unreadable ({type(exc).__name__}: "
                             f"{str(exc)[:120]}); {fix}") from exc
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        got = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise GroundingError(f"grounding weights {p} have format {got!r}, not {FORMAT!r}; {fix}")
    try:
        net = GroundingNet(ModelDims(**blob["dims"]))
        net.load_state_dict(blob["state"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise GroundingError(f"grounding weights {p} do not fit the network ({exc}); {fix}") \
            from exc
    net.eval()
    return net, dict(blob.get("calibration", {})), dict(blob.get("provenance", {}))
