"""The cameras of :class:`~katazuke.sim.TidyEnv`: intrinsics, camera poses and rendering.

:class:`Cameras` renders RGB, metric depth and object segmentation with PyBullet's
TinyRenderer from any optical-frame pose, and knows the fixed cameras of the room: the
robot's head camera (with the episode's intrinsics and mount perturbation) and four
ceiling cameras in the room corners. The appearance randomizers write ``light``,
``camera_perturbation`` and ``image_effects`` (through the env's attributes of the same
names); everything else is fixed by the :class:`~katazuke.sim.EnvConfig`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from katazuke.geometry import look_at, pose_to_matrix
from katazuke.sim.randomization import DEFAULT_LIGHT, apply_image_effects

__all__ = ["Cameras", "CameraFrame", "intrinsics_from_fov", "CEILING_HFOV_DEG"]

CEILING_HFOV_DEG = 90.0  # horizontal field of view of the ceiling cameras


@dataclass
class CameraFrame:
    """One rendered camera frame.

    Attributes:
        rgb: ``(H, W, 3)`` uint8.
        depth: ``(H, W)`` float32 metres along the optical axis; ``inf`` where nothing.
        segmentation: ``(H, W)`` int32 object body uid (see ``ObjectState.id``) or -1.
        K: ``(3, 3)`` float64 pinhole intrinsics (pixels).
        T_world_cam: ``(4, 4)`` float64 optical frame (z forward, x right, y down).
        stamp: sim time of the frame, s.
        name: camera name (``"head"``, ``"ceiling_0"``, ...).
    """

    rgb: np.ndarray
    depth: np.ndarray
    segmentation: np.ndarray
    K: np.ndarray
    T_world_cam: np.ndarray
    stamp: float
    name: str = "head"


def intrinsics_from_fov(width: int, height: int, hfov_deg: float) -> np.ndarray:
    """Pinhole ``K`` (3, 3) with square pixels and a centred principal point.

    Args:
        width, height: image size, px.
        hfov_deg: horizontal field of view, degrees.
    """
    fx = 0.5 * width / np.tan(np.radians(hfov_deg) / 2)
    return np.array([[fx, 0, width / 2], [0, fx, height / 2], [0, 0, 1.0]])


class Cameras:
    """Camera models and the renderer of one environment.

    Args:
        p: the ``pybullet`` module (constants and pure math helpers).
        client: the environment's ``BulletClient``.
        config: the environment's :class:`~katazuke.sim.EnvConfig` (image size, field of
            view, near/far planes).
    """

    def __init__(self, p, client, config):
        self._p, self._client, self._config = p, client, config
        self.light: dict = dict(DEFAULT_LIGHT)
        self.camera_perturbation: dict = {}
        self.image_effects: dict = {}
        self.noise_rng: np.random.Generator | None = None  # set by reset()
        self._seed = 0
        self._noise_banks: dict = {}

    def reset(self, seed: int) -> None:
        """New episode: the image-noise stream and noise banks follow ``seed``."""
        self._seed = seed
        self._noise_banks = {}
        self.noise_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 8])))

    # ------------------------------------------------------------------ models
    def head_intrinsics(self) -> np.ndarray:
        """``K`` (3, 3) of the head camera, including any intrinsics randomization."""
        cfg = self._config
        K = intrinsics_from_fov(cfg.image_width, cfg.image_height, cfg.hfov_deg)
        cp = self.camera_perturbation
        if cp:
            K[0, 0] *= cp["focal_scale"][0]
            K[1, 1] *= cp["focal_scale"][1]
            K[0, 2] += cp["pp_shift"][0] * cfg.image_width * 0.5
            K[1, 2] += cp["pp_shift"][1] * cfg.image_height * 0.5
        return K

    def head_pose(self, body: int, link: int) -> np.ndarray:
        """``T_world_cam`` (4, 4) of the head camera optical frame (with mount noise).

        Args:
            body: robot body uid.
            link: index of the URDF's optical-frame link.
        """
        ls = self._client.getLinkState(body, link, computeForwardKinematics=True)
        T = pose_to_matrix(ls[4], ls[5])
        cp = self.camera_perturbation
        if cp:
            rx, ry, rz = cp["rot"]
            R = np.asarray(self._p.getMatrixFromQuaternion(
                self._p.getQuaternionFromEuler([rx, ry, rz]))).reshape(3, 3)
            T[:3, :3] = T[:3, :3] @ R
            T[:3, 3] = T[:3, 3] + T[:3, :3] @ np.asarray(cp["trans"])
        return T

    @staticmethod
    def ceiling_pose(i: int, room_size: float) -> np.ndarray:
        """``T_world_cam`` of ceiling camera ``i`` (0..3): room corners looking inwards.

        Args:
            i: camera index 0..3.
            room_size: side of the square room, m.
        """
        h = room_size / 2 - 0.15
        corners = [(h, h), (-h, h), (-h, -h), (h, -h)]
        cx, cy = corners[i]
        return look_at((cx, cy, 2.15), (0.3 * cx, 0.3 * cy, 0.0))

    def ceiling_intrinsics(self) -> np.ndarray:
        """``K`` (3, 3) of every ceiling camera (90 degrees horizontal field of view)."""
        return intrinsics_from_fov(self._config.image_width, self._config.image_height,
                                   CEILING_HFOV_DEG)

    # --------------------------------------------------------------- rendering
    def render(self, T_world_cam: np.ndarray, K: np.ndarray, seg_lut: np.ndarray,
               stamp: float, name: str = "free", width: int | None = None,
               height: int | None = None, effects: bool = True) -> CameraFrame:
        """Render from an optical-frame pose with intrinsics ``K``.

        Args:
            T_world_cam: ``(4, 4)`` optical frame pose (z forward, x right, y down).
            K: ``(3, 3)`` intrinsics in pixels.
            seg_lut: ``(B,)`` int32 table, index ``body uid + 1`` -> object uid or -1.
            stamp: sim time stored in the frame, s.
            name: camera name stored in the frame.
            width, height: image size (default: the config's).
            effects: apply the image-noise randomizer's effects to ``rgb``.
        """
        cfg = self._config
        w = int(width or cfg.image_width)
        h = int(height or cfg.image_height)
        near, far = cfg.near, cfg.far
        view = np.diag([1.0, -1.0, -1.0, 1.0]) @ np.linalg.inv(T_world_cam)
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        proj = np.array([[2 * fx / w, 0, 1 - 2 * cx / w, 0],
                         [0, 2 * fy / h, 2 * cy / h - 1, 0],
                         [0, 0, -(far + near) / (far - near), -2 * far * near / (far - near)],
                         [0, 0, -1, 0]])
        _, _, rgba, zbuf, seg = self._client.getCameraImage(
            w, h, viewMatrix=view.T.flatten().tolist(), projectionMatrix=proj.T.flatten().tolist(),
            renderer=self._p.ER_TINY_RENDERER, shadow=0, **self.light)
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[:, :, :3]
        # OpenGL depth buffer -> metric z (float32 keeps < 0.1 mm error inside `far`)
        zbuf = np.asarray(zbuf, dtype=np.float32).reshape(h, w)
        depth = np.float32(far * near) / (np.float32(far) - np.float32(far - near) * zbuf)
        depth[zbuf >= np.float32(1.0 - 1e-7)] = np.inf
        # body uid -> object uid or -1; the table is shifted by one so background (-1) -> 0
        seg = np.asarray(seg, dtype=np.int32).reshape(h, w)
        segm = seg_lut[np.clip(seg + 1, 0, len(seg_lut) - 1)]
        if effects and self.image_effects:
            rgb = apply_image_effects(rgb, self.image_effects, self.noise_rng,
                                      self._noise_bank(h, w))
        return CameraFrame(np.ascontiguousarray(rgb), depth, segm, np.asarray(K, np.float64),
                           np.asarray(T_world_cam, np.float64), float(stamp), name)

    def _noise_bank(self, h: int, w: int) -> np.ndarray:
        """Unit Gaussian noise ``(h + 32, w + 32, 3)`` float32 for this episode and size;
        each frame reads a randomly offset window (much cheaper than fresh noise)."""
        bank = self._noise_banks.get((h, w))
        if bank is None:
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(
                [self._seed or 0, 17, h, w])))
            bank = self._noise_banks[(h, w)] = rng.standard_normal((h + 32, w + 32, 3),
                                                                   dtype=np.float32)
        return bank
