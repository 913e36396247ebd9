"""Contact sheet: a grid of randomized frames, one scene per tile, to eyeball variety."""
from __future__ import annotations

import math

import numpy as np

from katazuke.sim.dataset import sample_camera
from katazuke.sim.env import EnvConfig, SimError, TidyEnv

__all__ = ["contact_sheet"]


def contact_sheet(profile: str = "train", n: int = 16, seed: int = 0,
                  image_size: tuple[int, int] = (320, 240), cols: int | None = None,
                  progress: bool = False) -> np.ndarray:
    """Render ``n`` randomized scenes (seeds ``seed .. seed + n - 1``) into one image.

    Tile ``i`` shows scene ``reset(seed + i)`` from a random viewpoint 1-2.6 m from an
    object (the best-framed of 12 candidates), labelled with its seed and object count.

    Returns:
        ``(rows * H, cols * W, 3)`` uint8 image.
    """
    from PIL import Image, ImageDraw
    from tqdm import tqdm

    if n < 1:
        raise SimError(f"contact sheet needs n >= 1, got {n}")
    w, h = image_size
    cols = cols or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    sheet = np.zeros((rows * h, cols * w, 3), np.uint8)
    env = TidyEnv(EnvConfig(profile=profile, image_width=w, image_height=h,
                            render_observation=False))
    try:
        for i in tqdm(range(n), desc="contact sheet", disable=not progress):
            env.reset(seed=seed + i)
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed + i, 21])))
            targets = [o.T_world_obj[:3, 3] for o in env.ground_truth_objects()]
            T = sample_camera(env, rng, targets, dist_range=(1.0, 2.6), candidates=12)
            frame = env.render(T, env.head_intrinsics())
            tile = Image.fromarray(frame.rgb)
            ImageDraw.Draw(tile).text((4, 3), f"seed {seed + i}  {len(targets)} obj",
                                      fill=(255, 255, 255))
            r, c = divmod(i, cols)
            sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = np.asarray(tile)
    finally:
        env.close()
    return sheet
