"""Weights files shared by the detector and the crop classifier: one torch payload dict with a
``format`` tag, written atomically, read back with errors that name the file and the fix."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from katazuke.errors import KatazukeError

__all__ = ["save_payload", "load_network", "save_checkpoint", "load_checkpoint"]


def save_payload(path: str | Path, fmt: str, model: Any, model_config: dict, **fields: Any) -> None:
    """Write ``{"format": fmt, "version": 1, "model_config", "state_dict", **fields}`` to ``path``
    through a temporary file, so a crash never leaves a half-written weights file."""
    import torch

    payload = {"format": fmt, "version": 1, "model_config": model_config,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **fields}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_network(path: str | Path, fmt: str, what: str, hint: str,
                 build: Callable[[dict], Any], check: Callable[[dict], str | None] | None = None
                 ) -> tuple[Any, dict]:
    """Load a weights file into the network ``build(payload)`` returns, in eval mode.

    Args:
        fmt: the expected ``format`` tag.
        what: what the file is, for messages (``"detector weights"``).
        hint: how to fix a bad file, appended to every message.
        build: makes the (untrained) network from the payload.
        check: optional payload check returning a problem description or None.

    Raises:
        KatazukeError: missing, corrupt, wrong format, failed check, or weights that do not
            fit the network.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise KatazukeError(f"{what} not found: {path}; {hint}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt pickles/zips
        raise KatazukeError(f"{what} file {path} is corrupt or unreadable "
                            f"({type(exc).__name__}: {exc}); {hint}") from exc
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise KatazukeError(f"{path} is not a katazuke {what} file; {hint}")
    problem = check(payload) if check is not None else None
    if problem:
        raise KatazukeError(f"{path}: {problem}; {hint}")
    try:
        model = build(payload)
        model.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError, KatazukeError) as exc:
        raise KatazukeError(f"{what} file {path} does not match the network ({exc}); {hint}") from exc
    model.eval()
    return model, payload


def save_checkpoint(path: str | Path, model: Any, optimizer: Any, epoch: int, step: int,
                    elapsed_s: float, history: dict, train_config: dict) -> None:
    """A resumable training checkpoint (model, optimizer, progress, history, settings)."""
    import torch

    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                "step": step, "elapsed_s": elapsed_s, "history": history,
                "train_config": train_config}, path)


def load_checkpoint(path: str | Path, model: Any, optimizer: Any) -> tuple[int, int, float, dict]:
    """Restore ``model`` and ``optimizer`` from :func:`save_checkpoint`'s file.

    Returns:
        (epoch, step, elapsed_s, history) to continue from.
    """
    import torch

    ck = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(ck["model"])
    optimizer.load_state_dict(ck["optimizer"])
    return ck["epoch"], ck["step"], ck["elapsed_s"], ck["history"]
