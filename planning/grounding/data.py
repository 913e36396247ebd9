"""Scenes for training and evaluation from room records (what a simulated object map shows).

A room record is the plain-dict output of :func:`katazuke.sim.scenes.room_records`: the
objects as a perfect map would publish them plus the ground truth only evaluators read.
:func:`scene_from_record` turns it into the :class:`GroundingScene` the algorithm sees, with
the map's usual imperfections (:class:`MapNoise`: position error, a kind or a colour the map
does not know), and into the *truth* the user sees (kind, colour, support), which the
generator describes and the evaluator scores against.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from katazuke.config import dataclass, in_range, non_negative
from katazuke.errors import InputError
from katazuke.planning.grounding.scene import GroundingScene, SceneContainer, SceneObject
from katazuke.planning.tasks.config import TidyConfig

__all__ = ["MapNoise", "scene_from_record", "load_records", "save_records"]


@dataclass(frozen=True)
class MapNoise:
    """Imperfections of the object map the scenes simulate."""

    position_sigma_m: float = non_negative(0.03, "std of the error of each map position "
                                                 "coordinate, m")
    drop_kind: float = in_range(0.15, "probability that the map does not know an object's "
                                      "kind (category only)", 0.0, 1.0)
    drop_colour: float = in_range(0.1, "probability that the map does not know an object's "
                                       "colour", 0.0, 1.0)


def scene_from_record(record: Mapping[str, Any], config: TidyConfig, rng: np.random.Generator,
                      noise: MapNoise = MapNoise()) -> tuple[GroundingScene, dict[int, dict]]:
    """The scene the map shows and the truth the user sees.

    Args:
        record: a room record (see the module docstring).
        config: the task manager's configuration (furniture, containers).
        rng: draws the map's imperfections.
        noise: how imperfect the map is.

    Returns:
        ``(scene, truth)``; ``truth[i]`` for the scene's object ``i``: ``kind``, ``colour``,
        ``support`` (``"floor"``, ``"table"``, ``"shelf"``), ``destination``, ``id``.

    Raises:
        InputError: the record lacks a field.
    """
    try:
        objs, truth = [], {}
        for i, o in enumerate(record["objects"]):
            p = np.asarray(o["position"], dtype=np.float64)
            p = p + rng.normal(0.0, noise.position_sigma_m, 3) * np.array([1.0, 1.0, 0.3])
            kind = "" if rng.random() < noise.drop_kind else str(o["kind"])
            colour = "" if rng.random() < noise.drop_colour else str(o["dominant_color"])
            objs.append(SceneObject(int(o["id"]), str(o["category"]), kind, colour,
                                    tuple(float(v) for v in p),
                                    tuple(float(v) for v in o["extent"]),
                                    config.container_for(str(o["category"]))
                                    or str(o.get("destination", ""))))
            truth[i] = {"id": int(o["id"]), "kind": str(o["kind"]),
                        "colour": str(o["dominant_color"]), "support": str(o["gt_support"]),
                        "destination": str(o["destination"])}
        conf = {c.id: c for c in config.containers}
        containers = [SceneContainer(str(c["id"]), conf[c["id"]].colour if c["id"] in conf
                                     else str(c["colour"]),
                                     tuple(conf[c["id"]].categories) if c["id"] in conf
                                     else tuple(c.get("categories", ())),
                                     tuple(float(v) for v in c["position"]),
                                     (float(c["extent"][0]), float(c["extent"][1])))
                      for c in record["containers"]]
        scene = GroundingScene(objs, containers, config.vocabulary.furniture,
                               record["robot_xy"])
    except (KeyError, TypeError, IndexError) as exc:
        raise InputError(f"room record (seed {record.get('seed', '?')}) is malformed: "
                         f"missing or bad field {exc}") from exc
    return scene, truth


def save_records(records: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> None:
    """Write room records as JSON lines."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    with open(tmp, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    os.replace(tmp, p)


def load_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read room records written by :func:`save_records`.

    Raises:
        InputError: a missing or unreadable file, naming it.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"room records file {p} not found")
    out = []
    with open(p) as f:
        for n, line in enumerate(f, 1):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"{p}:{n}: not a JSON room record ({exc.msg}); regenerate "
                                 "the file") from exc
    return out
