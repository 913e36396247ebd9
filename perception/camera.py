"""Camera models: lens undistortion of colour and depth images (OpenCV).

The perception stack works on rectified pinhole images (intrinsics ``K``, no distortion).
A camera whose ``CameraInfo`` carries distortion coefficients (``plumb_bob`` /
``rational_polynomial``, i.e. OpenCV's radial-tangential model with 5 or 8 coefficients, or
``equidistant`` fisheye with 4) is rectified here to the same ``K``, so every later step
(detection boxes, back-projection) keeps its pinhole maths. Colour is resampled bilinearly;
depth with nearest neighbour so that no depth is invented across an object's edge, and pixels
with no source stay "no return" (NaN).

The remap tables are built once per camera model (:class:`Undistorter`), so rectifying a
320x240 frame costs one ``cv2.remap`` per image.
"""
from __future__ import annotations

import numpy as np

from katazuke.errors import InputError

__all__ = ["Undistorter", "DISTORTION_MODELS"]

#: Distortion models of ``sensor_msgs/CameraInfo`` and how many coefficients each takes.
DISTORTION_MODELS = {"plumb_bob": (5,), "rational_polynomial": (8, 12, 14), "equidistant": (4,)}


class Undistorter:
    """Rectify images of one camera to an undistorted pinhole image with the same ``K``.

    Args:
        K: ``(3, 3)`` intrinsics (pixels).
        D: distortion coefficients, as ``CameraInfo.d`` (``k1 k2 t1 t2 k3 [k4 k5 k6 ...]``, or
            ``k1 k2 k3 k4`` for ``equidistant``).
        width, height: image size (pixels).
        model: ``CameraInfo.distortion_model``; ``""`` is read as ``plumb_bob``.

    Raises:
        InputError: an unknown model, a coefficient count the model does not take, a
            non-finite value, or a non-positive focal length / size.
    """

    def __init__(self, K: np.ndarray, D, width: int, height: int, model: str = "plumb_bob") -> None:
        K = np.asarray(K, np.float64).reshape(3, 3)
        D = np.asarray(D, np.float64).ravel()
        model = model or "plumb_bob"
        if model not in DISTORTION_MODELS:
            raise InputError(f"distortion model {model!r} is not supported; use one of "
                             f"{sorted(DISTORTION_MODELS)} or publish rectified images with D = 0")
        if D.size and D.size not in DISTORTION_MODELS[model]:
            raise InputError(f"{model} takes {' or '.join(map(str, DISTORTION_MODELS[model]))} "
                             f"distortion coefficients, got {D.size}")
        if not (np.isfinite(K).all() and np.isfinite(D).all()):
            raise InputError("camera intrinsics or distortion contain NaN/inf")
        if K[0, 0] <= 0 or K[1, 1] <= 0 or width <= 0 or height <= 0:
            raise InputError(f"camera needs fx, fy > 0 and a positive size; got fx={K[0, 0]}, "
                             f"fy={K[1, 1]}, {width}x{height}")
        self.K, self.D, self.model = K, D, model
        self.size = (int(width), int(height))
        self._maps: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def is_identity(self) -> bool:
        """True when there is nothing to undo (no or all-zero coefficients)."""
        return not np.any(self.D)

    def _remap_tables(self) -> tuple[np.ndarray, np.ndarray]:
        if self._maps is None:
            import cv2

            if self.model == "equidistant":
                self._maps = cv2.fisheye.initUndistortRectifyMap(
                    self.K, self.D, np.eye(3), self.K, self.size, cv2.CV_32FC1)
            else:
                self._maps = cv2.initUndistortRectifyMap(self.K, self.D, None, self.K, self.size,
                                                         cv2.CV_32FC1)
        return self._maps

    def _check(self, image: np.ndarray, what: str) -> None:
        if image.shape[1::-1] != self.size:
            raise InputError(f"{what} is {image.shape[1]}x{image.shape[0]} but the camera model is "
                             f"{self.size[0]}x{self.size[1]}")

    def rectify_rgb(self, rgb: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 colour → rectified ``(H, W, 3)`` uint8 (bilinear; black outside)."""
        self._check(rgb, "colour image")
        if self.is_identity:
            return rgb
        import cv2

        mx, my = self._remap_tables()
        return cv2.remap(rgb, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def rectify_depth(self, depth_m: np.ndarray) -> np.ndarray:
        """``(H, W)`` float32 metres → rectified, nearest neighbour; NaN where no source pixel."""
        self._check(depth_m, "depth image")
        if self.is_identity:
            return depth_m
        import cv2

        mx, my = self._remap_tables()
        return cv2.remap(np.asarray(depth_m, np.float32), mx, my, cv2.INTER_NEAREST,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=float("nan"))
