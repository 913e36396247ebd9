"""Randomization profiles: ``none``, ``train`` and ``test``.

* ``none``: nominal colours, default light, nominal intrinsics, no image noise, nominal
  physics; train kinds only.
* ``train``: train texture families, train kinds, every randomizer on.
* ``test``: held-out texture families, train *and* held-out kinds, every randomizer on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from katazuke.sim.textures import HELD_OUT_FAMILIES, TRAIN_FAMILIES

__all__ = ["Profile", "PROFILES", "get_profile"]


@dataclass(frozen=True)
class Profile:
    """What a profile randomizes.

    Attributes:
        name: profile name.
        texture_families: texture families the appearance randomizer draws from.
        include_held_out_kinds: whether held-out object kinds may spawn.
        randomize: whether randomizers run at all.
        distractors: (min, max) number of distractor items (rugs, posters) per episode.
    """

    name: str
    texture_families: tuple[str, ...]
    include_held_out_kinds: bool
    randomize: bool
    distractors: tuple[int, int]

    def make_randomizers(self, seed: int) -> list:
        """Fresh randomizers, each with its own generator derived from ``seed``."""
        from katazuke.sim import randomization as r

        if not self.randomize:
            return []
        classes = [r.AppearanceRandomizer, r.LightRandomizer, r.CameraRandomizer,
                   r.ImageNoiseRandomizer, r.PhysicsRandomizer]
        return [cls(np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 101, i]))))
                for i, cls in enumerate(classes)]


PROFILES: dict[str, Profile] = {
    "none": Profile("none", (), False, False, (0, 0)),
    "train": Profile("train", TRAIN_FAMILIES, False, True, (0, 4)),
    "test": Profile("test", HELD_OUT_FAMILIES, True, True, (0, 4)),
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; :class:`SimError` naming the choices otherwise."""
    if name not in PROFILES:
        from katazuke.sim.env import SimError

        raise SimError(f"unknown profile {name!r}: use one of {sorted(PROFILES)}")
    return PROFILES[name]
