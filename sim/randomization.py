"""Domain randomizers.

Each randomizer owns a ``np.random.Generator`` and exposes ``randomize(env)`` (draw new
parameters and apply them), ``save()`` (a snapshot of the parameters and the generator
state) and ``restore(state)`` (re-apply a snapshot). They are seeded from the episode
seed by :meth:`TidyEnv.reset`, so an episode is a pure function of its seed. The
``none`` profile uses no randomizers (nominal appearance, intrinsics and physics).
"""
from __future__ import annotations

import abc
import copy
import os

import numpy as np

from katazuke.sim.textures import make_texture

__all__ = ["Randomizer", "TextureBank", "AppearanceRandomizer", "LightRandomizer",
           "CameraRandomizer", "ImageNoiseRandomizer", "PhysicsRandomizer",
           "apply_image_effects", "DEFAULT_LIGHT"]

DEFAULT_LIGHT = {"lightDirection": [0.4, -0.3, 1.0], "lightColor": [1.0, 1.0, 1.0],
                 "lightAmbientCoeff": 0.55, "lightDiffuseCoeff": 0.5,
                 "lightSpecularCoeff": 0.05}


class TextureBank:
    """Procedural texture images of some families, written once as PNG files.

    The bank is a pure function of ``(families, per_family, size)``: texture ``v`` of
    family ``f`` is drawn from ``Generator(SeedSequence([7919, family_index, v]))``.

    Args:
        folder: where the PNG files go (created if missing).
        families: texture family names (see :mod:`katazuke.sim.textures`).
        per_family: variants per family.
        size: side in pixels.
    """

    def __init__(self, folder: str, families: tuple[str, ...], per_family: int = 6,
                 size: int = 64):
        from PIL import Image

        from katazuke.sim.textures import TEXTURE_FAMILIES

        os.makedirs(folder, exist_ok=True)
        self.files: list[str] = []
        self.families = tuple(families)
        names = list(TEXTURE_FAMILIES)
        for fam in families:
            fi = names.index(fam)
            for v in range(per_family):
                path = os.path.join(folder, f"tex_{fam}_{v}_{size}.png")
                if not os.path.exists(path):
                    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(
                        [7919, fi, v])))
                    tmp = f"{path}.{os.getpid()}.tmp"
                    Image.fromarray(make_texture(fam, rng, size)).save(tmp, format="PNG")
                    os.replace(tmp, path)
                self.files.append(path)
        self.ids: list[int] = []

    def load(self, client) -> None:
        """Load every texture into ``client`` (again after each ``resetSimulation``)."""
        self.ids = [client.loadTexture(f) for f in self.files]


class Randomizer(abc.ABC):
    """Base class: a seeded generator plus the parameters last applied."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.params: dict = {}

    @abc.abstractmethod
    def randomize(self, env) -> None:
        """Draw new parameters from ``self.rng`` and apply them to ``env``."""

    def apply(self, env) -> None:
        """Re-apply ``self.params`` to ``env`` (default: nothing to push to the sim)."""

    def save(self) -> dict:
        """Snapshot of the parameters and of the generator state."""
        return {"params": copy.deepcopy(self.params),
                "rng": copy.deepcopy(self.rng.bit_generator.state)}

    def restore(self, state: dict, env=None) -> None:
        """Return to a snapshot from :meth:`save` (and re-apply it when ``env`` is given)."""
        self.params = copy.deepcopy(state["params"])
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        if env is not None:
            self.apply(env)


def _random_rgba(rng: np.random.Generator, base=None) -> list[float]:
    if base is not None and rng.random() < 0.5:
        c = np.clip(np.asarray(base[:3]) * rng.uniform(0.7, 1.3, 3), 0.05, 1.0)
    else:
        c = rng.uniform(0.08, 1.0, 3)
    return [float(c[0]), float(c[1]), float(c[2]), 1.0]


class AppearanceRandomizer(Randomizer):
    """Textures and colours of floor, walls, furniture, distractors and objects.

    Args:
        rng: generator.
        texture_prob: probability that a surface gets a texture (else plain colour).
    """

    def __init__(self, rng, texture_prob: float = 0.7):
        super().__init__(rng)
        self.texture_prob = texture_prob

    def randomize(self, env) -> None:
        bank = env.texture_bank
        assign = {}
        for body, role in env.textured_bodies():
            tex = -1
            if bank is not None and bank.ids and self.rng.random() < self.texture_prob:
                tex = int(self.rng.integers(len(bank.ids)))
            base = env.nominal_colour(body)
            if role in ("floor", "wall", "furniture") and tex >= 0:
                rgba = [float(v) for v in self.rng.uniform(0.6, 1.0, 3)] + [1.0]
            else:
                rgba = _random_rgba(self.rng, base)
            assign[int(body)] = (tex, rgba)
        self.params = {"assign": assign}
        self.apply(env)

    def apply(self, env) -> None:
        bank = env.texture_bank
        for body, (tex, rgba) in self.params.get("assign", {}).items():
            for link in env.visual_links(body):
                if tex >= 0:
                    env.client.changeVisualShape(body, link, textureUniqueId=bank.ids[tex],
                                                 rgbaColor=rgba)
                else:
                    env.client.changeVisualShape(body, link, rgbaColor=rgba,
                                                 textureUniqueId=-1)


class LightRandomizer(Randomizer):
    """TinyRenderer light: direction, colour, ambient, diffuse and specular coefficients."""

    def randomize(self, env) -> None:
        r = self.rng
        az, el = r.uniform(0, 2 * np.pi), r.uniform(0.3, 1.4)
        self.params = {
            "lightDirection": [float(np.cos(az) * np.cos(el)), float(np.sin(az) * np.cos(el)),
                               float(np.sin(el))],
            "lightColor": [float(v) for v in np.clip(1.0 + r.normal(0, 0.12, 3), 0.6, 1.0)],
            "lightAmbientCoeff": float(r.uniform(0.3, 0.75)),
            "lightDiffuseCoeff": float(r.uniform(0.25, 0.75)),
            "lightSpecularCoeff": float(r.uniform(0.0, 0.3)),
        }
        self.apply(env)

    def apply(self, env) -> None:
        env.light = dict(self.params)


class CameraRandomizer(Randomizer):
    """Camera intrinsics (focal lengths and principal point within ±rel) and extrinsic
    noise of the head camera mount (small rotation in rad, translation in m)."""

    def __init__(self, rng, rel: float = 0.05, rot_std: float = 0.01, trans_std: float = 0.005):
        super().__init__(rng)
        self.rel, self.rot_std, self.trans_std = rel, rot_std, trans_std

    def randomize(self, env) -> None:
        r = self.rng
        self.params = {"focal_scale": [float(v) for v in r.uniform(1 - self.rel, 1 + self.rel, 2)],
                       "pp_shift": [float(v) for v in r.uniform(-self.rel, self.rel, 2)],
                       "rot": [float(v) for v in r.normal(0, self.rot_std, 3)],
                       "trans": [float(v) for v in r.normal(0, self.trans_std, 3)]}
        self.apply(env)

    def apply(self, env) -> None:
        env.camera_perturbation = dict(self.params)


class ImageNoiseRandomizer(Randomizer):
    """Per-episode image effects: exposure gain, gamma, blur radius, noise level."""

    def randomize(self, env) -> None:
        r = self.rng
        self.params = {"gain": float(r.uniform(0.75, 1.25)), "gamma": float(r.uniform(0.8, 1.25)),
                       "blur": float(r.choice([0.0, 0.0, 0.5, 1.0])),
                       "noise_std": float(r.uniform(0.0, 6.0))}
        self.apply(env)

    def apply(self, env) -> None:
        env.image_effects = dict(self.params)


def apply_image_effects(rgb: np.ndarray, effects: dict, rng: np.random.Generator,
                        noise_bank: np.ndarray | None = None) -> np.ndarray:
    """Exposure, gamma, box blur and Gaussian noise on an image.

    Args:
        rgb: ``(H, W, 3)`` uint8.
        effects: ``{"gain", "gamma", "blur" (px), "noise_std" (intensity levels)}``.
        rng: noise source (fresh noise, or the window offset into ``noise_bank``).
        noise_bank: optional ``(H + m, W + m, 3)`` float32 unit Gaussian noise; a window at
            a random offset is used instead of drawing ``H * W * 3`` new samples.

    Returns:
        ``(H, W, 3)`` uint8.
    """
    if not effects:
        return rgb
    # exposure and gamma act per intensity level: a 256-entry table
    levels = np.arange(256, dtype=np.float64) / 255.0
    table = (np.clip(levels * effects["gain"], 0, 1) ** effects["gamma"]).astype(np.float32)
    x = table[rgb]
    if effects["blur"] > 0:
        w = np.float32(effects["blur"])
        # separable 3-tap blur with side weight w / (1 + 2 w)
        side, mid = w / (1 + 2 * w), 1 / (1 + 2 * w)
        y = x * mid
        y[1:] += side * x[:-1]
        y[:-1] += side * x[1:]
        y[0] += side * x[0]
        y[-1] += side * x[-1]
        x = y * mid
        x[:, 1:] += side * y[:, :-1]
        x[:, :-1] += side * y[:, 1:]
        x[:, 0] += side * y[:, 0]
        x[:, -1] += side * y[:, -1]
    x *= np.float32(255.0)
    if effects["noise_std"] > 0:
        h, w = x.shape[:2]
        if noise_bank is not None and noise_bank.shape[0] >= h and noise_bank.shape[1] >= w:
            oy = int(rng.integers(noise_bank.shape[0] - h + 1))
            ox = int(rng.integers(noise_bank.shape[1] - w + 1))
            noise = noise_bank[oy:oy + h, ox:ox + w]
        else:
            noise = rng.standard_normal(x.shape, dtype=np.float32)
        x += noise * np.float32(effects["noise_std"])
    np.clip(x, 0, 255, out=x)
    return np.rint(x).astype(np.uint8)


class PhysicsRandomizer(Randomizer):
    """Friction, restitution and mass of the objects, and the floor friction."""

    def randomize(self, env) -> None:
        r = self.rng
        objs = {}
        for o in env.objects:
            d = {"lateralFriction": float(r.uniform(0.6, 1.2)),
                 "restitution": float(r.uniform(0.0, 0.3)),
                 "mass": float(o.kind.mass * r.uniform(0.7, 1.3))}
            if o.uid in env.scene.parked:  # parked bodies stay static (mass 0)
                del d["mass"]
            objs[int(o.uid)] = d
        self.params = {"objects": objs, "floor_friction": float(r.uniform(0.5, 1.0))}
        self.apply(env)

    def apply(self, env) -> None:
        for uid, d in self.params.get("objects", {}).items():
            env.client.changeDynamics(uid, -1, **d)
        if "floor_friction" in self.params:
            env.set_floor_friction(self.params["floor_friction"])

