"""Rooms as object-map records, for training and evaluating language grounding.

:func:`room_records` resets a :class:`~katazuke.sim.TidyEnv` with a seed and returns its
objects and containers as plain ``ObjectInstance``-shaped dicts (what a perfect object map
would publish: category, kind, box centre and size, dominant colour name) together with the
ground truth only an evaluator may read (the surface each object rests on, its true
colour). :func:`colour_name` names an RGB colour the way users do ("red", "brown").
"""
from __future__ import annotations

import colorsys
from typing import Any

import numpy as np

__all__ = ["colour_name", "room_records", "COLOUR_NAMES"]

#: The colour names :func:`colour_name` returns.
COLOUR_NAMES = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown",
                "white", "grey", "black")


def colour_name(rgb) -> str:
    """The everyday name of an RGB colour in [0, 1] (``(3,)``), one of :data:`COLOUR_NAMES`."""
    r, g, b = (float(np.clip(v, 0.0, 1.0)) for v in rgb[:3])
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    if v < 0.22:
        return "black"
    if s < 0.2:
        return "white" if v > 0.8 else "grey"
    deg = h * 360.0
    if deg < 15 or deg >= 340:
        return "pink" if (s < 0.5 and v > 0.7) else ("brown" if v < 0.55 else "red")
    if deg < 42:
        return "brown" if v < 0.65 else "orange"
    if deg < 70:
        return "brown" if v < 0.5 else "yellow"
    if deg < 165:
        return "green"
    if deg < 255:
        return "blue"
    if deg < 290:
        return "purple"
    return "pink"


def _object_rgba(env, uid: int):
    for r in env.randomizers:
        assign = r.params.get("assign") if isinstance(r.params, dict) else None
        if assign and int(uid) in assign:
            return assign[int(uid)][1]
    return env.nominal_colour(uid)


def room_records(env, seed: int, rng: np.random.Generator) -> dict[str, Any]:
    """One room as map records plus its ground truth.

    Args:
        env: a :class:`~katazuke.sim.TidyEnv` (``include_robot`` may be False; its profile
            picks the object kinds and colours).
        seed: the room's seed (``env.reset(seed)``).
        rng: draws the robot's position in the room (the user speaks while it moves).

    Returns:
        ``{"seed", "profile", "robot_xy", "objects": [...], "containers": [...]}``; each
        object has the ``ObjectInstance`` fields ``id, category, kind, position, extent,
        dominant_color, destination`` and the evaluation-only ``gt_support`` (``"floor"``,
        ``"table"``, ``"shelf"``) and ``held_out``; each container ``id, colour, position,
        extent, categories``.
    """
    env.reset(int(seed))
    room = env.scene.room
    objects = []
    for o in env.ground_truth_objects():
        T = np.asarray(o.T_world_obj)
        centre = T[:3, 3]
        # world-axis half-height of the oriented box: its lowest point rests on the support
        half_z = 0.5 * float(np.abs(T[2, :3]) @ np.asarray(o.extent))
        bottom = centre[2] - half_z
        support = "floor"
        best = np.inf
        for s in room.surfaces:
            if np.all(centre[:2] >= s.xy_min - 0.1) and np.all(centre[:2] <= s.xy_max + 0.1):
                gap = abs(bottom - s.z)
                if gap < best and gap < 0.06:
                    best, support = gap, s.name.split("_")[0]
        rot = np.abs(T[:3, :3])
        objects.append({
            "id": int(o.id), "category": o.category, "kind": o.kind,
            "position": [float(v) for v in centre],
            "extent": [float(v) for v in rot @ np.asarray(o.extent)],   # world axes
            "dominant_color": colour_name(_object_rgba(env, o.id)),
            "destination": o.container, "gt_support": support, "held_out": bool(o.held_out)})
    containers = [{"id": c.id, "colour": c.colour,
                   "position": [float(v) for v in np.asarray(c.T_world_container)[:3, 3]],
                   "extent": [float(v) for v in c.extent], "categories": list(c.categories)}
                  for c in env.containers]
    robot_xy = [float(v) for v in rng.uniform(-1.3, 1.3, 2)]
    return {"seed": int(seed), "profile": env.profile.name, "robot_xy": robot_xy,
            "objects": objects, "containers": containers}


def make_records(profile: str, seeds: list[int], path, progress=None) -> list[dict[str, Any]]:
    """Room records of ``seeds`` in ``profile``, cached in the JSON-lines file ``path``
    (appended as rooms are made, so an interrupted run resumes; rooms are a function of
    the seed only).

    Returns:
        The records in ``seeds`` order.
    """
    import json
    from pathlib import Path

    from katazuke.sim.env import EnvConfig, TidyEnv

    p = Path(path)
    have: dict[int, dict[str, Any]] = {}
    if p.is_file():
        with open(p) as f:
            for line in f:
                line = line.strip()
                if line:
                    r = json.loads(line)
                    if r.get("profile") == profile:
                        have[int(r["seed"])] = r
    todo = [s for s in seeds if s not in have]
    if todo:
        p.parent.mkdir(parents=True, exist_ok=True)
        env = TidyEnv(EnvConfig(profile=profile, render_observation=False, include_robot=False))
        try:
            with open(p, "a") as f:
                for s in (progress(todo) if progress else todo):
                    r = room_records(env, s, np.random.default_rng([int(s), 31]))
                    have[s] = r
                    f.write(json.dumps(r) + "\n")
                    f.flush()
        finally:
            env.close()
    return [have[s] for s in seeds]
