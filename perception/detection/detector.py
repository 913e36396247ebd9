"""``Detector(config).detect(rgb, depth)``: the inference API, and the weights file format."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from katazuke.config import config_to_dict, load_config
from katazuke.errors import InputError, KatazukeError
from katazuke.perception.detection.config import CATEGORIES, UNKNOWN, DetectorConfig, ModelConfig

__all__ = ["Detection", "Detector", "DEFAULT_WEIGHTS", "save_weights", "load_weights",
           "REGENERATE_HINT"]

#: The committed weights file.
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "detector.pt"
REGENERATE_HINT = ("regenerate it with `katazuke train detector --data DIR --out OUT` "
                   "(see perception/detection/weights/README.md for the exact command) "
                   "or point the weights setting at a valid file")
_FORMAT = "katazuke-detector"


@dataclass(frozen=True)
class Detection:
    """One detected object in an image.

    Attributes:
        box_xywh: ``(4,)`` float64 ``[x, y, w, h]``, pixels of the input image (x right, y down).
        objectness: class-agnostic score in [0, 1].
        category: best of ``category_names`` (``"unknown"`` when no known category is confident).
        category_score: probability of ``category``.
        category_names: the 6 known categories then ``"unknown"``.
        category_scores: ``(7,)`` float64 probabilities aligned with ``category_names``, sum 1.
    """

    box_xywh: np.ndarray
    objectness: float
    category: str
    category_score: float
    category_names: tuple[str, ...]
    category_scores: np.ndarray


def save_weights(path: str | Path, model: Any, model_config: ModelConfig,
                 input_size: tuple[int, int], extra: dict | None = None) -> None:
    """Write a weights file: state dict + architecture + input size (W, H) + metadata."""
    from katazuke.perception.detection.weights_io import save_payload

    save_payload(path, _FORMAT, model, config_to_dict(model_config), input_size=list(input_size),
                 categories=list(CATEGORIES), extra=extra or {})


def load_weights(path: str | Path) -> tuple[Any, dict]:
    """Load a weights file into a fresh eval-mode network.

    Returns:
        (model, payload) where payload holds ``input_size`` and ``extra`` metadata.

    Raises:
        KatazukeError: file missing, unreadable, or not a detector weights file.
    """
    from katazuke.perception.detection.model import ObjectnessNet
    from katazuke.perception.detection.weights_io import load_network

    return load_network(path, _FORMAT, "detector weights", REGENERATE_HINT,
                        lambda p: ObjectnessNet(load_config(ModelConfig, p["model_config"],
                                                            where=str(path))))


class Detector:
    """Class-agnostic objectness detector with a category head.

    Example:
        >>> det = Detector(DetectorConfig())          # committed weights
        >>> dets = det.detect(rgb, depth)             # (240, 320, 3) uint8, (240, 320) metres
    """

    def __init__(self, config: DetectorConfig | None = None, model: Any = None,
                 input_size: tuple[int, int] | None = None) -> None:
        """Load the weights named by ``config.weights`` (or use an in-memory ``model``).

        Args:
            config: inference settings.
            model: an ObjectnessNet to use instead of loading a file (training/eval).
            input_size: (W, H) network input for ``model``; defaults to the image size.

        Raises:
            KatazukeError: the weights file is missing or corrupt.
        """
        self.config = config or DetectorConfig()
        if self.config.peak_kernel % 2 != 1:
            raise KatazukeError(f"peak_kernel must be odd, got {self.config.peak_kernel}")
        model_from_file = model is None
        if model is None:
            path = Path(self.config.weights) if self.config.weights else DEFAULT_WEIGHTS
            model, payload = load_weights(path)
            input_size = tuple(payload["input_size"])  # type: ignore[assignment]
            self.metadata = payload.get("extra", {})
        else:
            self.metadata = {}
        self.model = model
        self.input_size = input_size
        self.category_names = tuple(CATEGORIES) + (UNKNOWN,)
        self.refiner = self._load_refiner(from_file=model_from_file)

    def _load_refiner(self, from_file: bool) -> Any:
        """The crop classifier named by ``config.classifier_weights`` (None = off).

        ``''`` means the committed file when the detector itself was loaded from a file and the
        committed classifier exists (in-memory models, as in training and tests, run without
        it); an explicit path must load.
        """
        from katazuke.perception.detection.classifier import (DEFAULT_CLASSIFIER_WEIGHTS,
                                                              CategoryRefiner)

        c = self.config
        name = c.classifier_weights.strip()
        if name.lower() == "none" or (name == "" and (not from_file
                                                      or not DEFAULT_CLASSIFIER_WEIGHTS.is_file())):
            return None
        path = Path(name) if name else DEFAULT_CLASSIFIER_WEIGHTS
        fusion = None if c.classifier_fusion < 0 else c.classifier_fusion
        objectness = None if c.classifier_objectness < 0 else c.classifier_objectness
        return CategoryRefiner.from_file(path, c.classifier_top_k, c.classifier_min_score, fusion,
                                         objectness, c.nms_iou)

    @staticmethod
    def check_image(rgb: Any) -> np.ndarray:
        """Validate an RGB image: ``(H, W, 3)`` uint8, H and W >= 32."""
        if not isinstance(rgb, np.ndarray):
            raise InputError(f"detect() needs a numpy array (H, W, 3) uint8, got {type(rgb).__name__}")
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise InputError(f"detect() needs an RGB image of shape (H, W, 3), got {rgb.shape}; "
                             "convert grey/RGBA images to 3-channel RGB first")
        if rgb.dtype != np.uint8:
            raise InputError(f"detect() needs dtype uint8 (0..255), got {rgb.dtype}; "
                             "scale float images by 255 and cast with .astype(np.uint8)")
        if rgb.shape[0] < 32 or rgb.shape[1] < 32:
            raise InputError(f"image too small {rgb.shape[:2]}; need at least 32x32 pixels")
        return rgb

    @property
    def uses_depth(self) -> bool:
        """True for an RGB-D model: :meth:`detect` then needs the registered depth image."""
        return int(getattr(getattr(self.model, "config", None), "in_channels", 3)) == 4

    @staticmethod
    def check_depth(depth: Any, shape: tuple[int, int]) -> np.ndarray:
        """Validate a depth image registered to an ``shape`` (H, W) colour image.

        float = metres (0, NaN, inf: no reading); uint16 = millimetres (0: no reading).
        """
        if not isinstance(depth, np.ndarray):
            raise InputError(f"depth must be a numpy array (H, W), got {type(depth).__name__}")
        if depth.ndim == 3 and depth.shape[2] == 1:
            depth = depth[:, :, 0]
        if depth.ndim != 2:
            raise InputError(f"depth must be one channel (H, W), got shape {depth.shape}")
        if depth.shape != tuple(shape):
            raise InputError(f"depth is {depth.shape[1]}x{depth.shape[0]} but the colour image is "
                             f"{shape[1]}x{shape[0]}; register depth to the colour camera "
                             "(same size) before detection")
        if not (np.issubdtype(depth.dtype, np.floating) or depth.dtype == np.uint16):
            raise InputError(f"depth dtype {depth.dtype} not supported: use float metres or "
                             "uint16 millimetres (16UC1)")
        return depth

    def detect(self, rgb: np.ndarray, depth: np.ndarray | None = None) -> list[Detection]:
        """Detect objects in one image.

        Args:
            rgb: ``(H, W, 3)`` uint8 RGB image.
            depth: ``(H, W)`` depth registered to ``rgb`` (float metres or uint16 mm); needed
                by RGB-D models (:attr:`uses_depth`), ignored by RGB models.

        Returns:
            detections sorted by decreasing objectness.

        Raises:
            InputError: wrong type, shape or dtype; depth missing for an RGB-D model.
        """
        return self.detect_batch([self.check_image(rgb)],
                                 None if depth is None else [depth])[0]

    def detect_batch(self, images: list[np.ndarray], depths: list[np.ndarray] | None = None
                     ) -> list[list[Detection]]:
        """Detect in several images of the same size (see :meth:`detect`)."""
        raw = self.predict_raw(images, depths)
        return [self._to_detections(r) for r in raw]

    def predict_samples(self, samples: list[Any], batch: int = 16, progress: bool = False,
                        desc: str = "detecting") -> list[dict[str, np.ndarray]]:
        """:meth:`predict_raw` over dataset samples (``.rgb``, ``.depth``) in batches.

        Depth goes in only for RGB-D weights; a batch mixing image sizes runs image by image.
        """
        return self.predict_samples_pair(samples, batch, progress, desc)[0]

    def predict_samples_pair(self, samples: list[Any], batch: int = 16, progress: bool = False,
                             desc: str = "detecting"
                             ) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
        """(:meth:`predict_raw` output, the detector alone) for ``samples``, from one network
        pass; both lists are the same when no second stage runs."""
        starts = range(0, len(samples), batch)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc=desc, unit="batch")
        final: list[dict[str, np.ndarray]] = []
        alone: list[dict[str, np.ndarray]] = []
        for i in starts:
            chunk = samples[i:i + batch]
            groups = [chunk] if len({s.rgb.shape for s in chunk}) == 1 else [[s] for s in chunk]
            for g in groups:
                f, d = self._predict_pair([s.rgb for s in g],
                                          [s.depth for s in g] if self.uses_depth else None)
                final += f
                alone += d
        return final, alone

    def predict_raw(self, images: list[np.ndarray], depths: list[np.ndarray] | None = None
                    ) -> list[dict[str, np.ndarray]]:
        """Arrays per image: ``boxes`` (K,4) xyxy pixels, ``scores`` (K,), ``category_probs`` (K,6).

        With a crop classifier loaded (:attr:`refiner`) and depth given, the categories of the
        best boxes are re-scored by it (see :mod:`.classifier`).
        """
        return self._predict_pair(images, depths)[0]

    def _predict_pair(self, images: list[np.ndarray], depths: list[np.ndarray] | None
                      ) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
        """(with the second stage, detector alone) raw detections; the second list is the
        first when no second stage runs."""
        import torch
        from torch.nn import functional as F

        from katazuke.perception.detection.decode import decode
        from katazuke.perception.detection.model import (STRIDE, depth_channel, inverse_depth,
                                                         normalize)

        if not images:
            return [], []
        for im in images:
            self.check_image(im)
        h, w = images[0].shape[:2]
        if any(im.shape != images[0].shape for im in images):
            raise InputError("detect_batch() needs images of one size; call detect() per image")
        if self.uses_depth:
            if depths is None or len(depths) != len(images):
                raise InputError("these detector weights are RGB-D: pass the depth image "
                                 "registered to each colour image (detect(rgb, depth))")
            depths = [self.check_depth(d, (h, w)) for d in depths]
        if self.config.num_threads > 0 and torch.get_num_threads() != self.config.num_threads:
            torch.set_num_threads(self.config.num_threads)
        in_w, in_h = self.input_size or (w, h)
        batch = torch.from_numpy(np.ascontiguousarray(np.stack(images)))
        with torch.inference_mode():
            x = normalize(batch)
            if self.uses_depth:
                inv = inverse_depth(np.stack(depths))
                x = torch.cat([x, depth_channel(inv)], 1)
            if (in_w, in_h) != (w, h):
                rgb_x = F.interpolate(x[:, :3], size=(in_h, in_w), mode="bilinear",
                                      align_corners=False)
                if self.uses_depth:
                    d_x = F.interpolate(x[:, 3:], size=(in_h, in_w), mode="nearest")
                    x = torch.cat([rgb_x, d_x], 1)
                else:
                    x = rgb_x
            self.model.eval()
            out = self.model(x)
            c = self.config
            if c.flip_test:
                mirrored = self.model(torch.flip(x, [3]))
                out = {k: v if k == "offset" else (v + torch.flip(mirrored[k], [3])) / 2
                       for k, v in out.items()}
            refine = self.refiner is not None and depths is not None
            # A re-scoring second stage sees boxes below the threshold too: it may raise them,
            # but never above s_det^(1-a) (p_obj <= 1), so boxes below T^(1/(1-a)) can never
            # reach the threshold T and are not worth the second look.
            rescore = refine and self.refiner.objectness_weight > 0
            thr = c.score_threshold
            if rescore:
                a = self.refiner.objectness_weight
                reachable = thr ** (1.0 / (1.0 - a)) if a < 1.0 else 0.0
                thr = min(thr, max(self.refiner.min_score, reachable))
            raws = decode(out, STRIDE, (w / in_w, h / in_h), thr, c.nms_iou,
                          c.max_detections, c.peak_kernel)

        def above(rs: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
            return [{k: v[r["scores"] >= c.score_threshold] for k, v in r.items()} for r in rs]

        if not refine:
            return raws, raws
        if not self.uses_depth:
            depths = [self.check_depth(d, (h, w)) for d in depths]
        refined = [self.refiner.refine(im, d, r) for im, d, r in zip(images, depths, raws)]
        # Decoded below the threshold only for the re-scoring: the threshold applies after it,
        # and to the detector-alone boxes as it would without a second stage.
        return (above(refined), above(raws)) if rescore else (refined, raws)

    def _to_detections(self, r: dict[str, np.ndarray]) -> list[Detection]:
        from katazuke.perception.detection.boxes import xyxy_to_xywh
        from katazuke.perception.detection.decode import category_scores_with_unknown

        probs7 = category_scores_with_unknown(r["category_probs"], self.config.unknown_threshold)
        xywh = xyxy_to_xywh(r["boxes"])
        dets = []
        for i in range(len(xywh)):
            k = int(np.argmax(probs7[i]))
            dets.append(Detection(box_xywh=xywh[i], objectness=float(r["scores"][i]),
                                  category=self.category_names[k],
                                  category_score=float(probs7[i, k]),
                                  category_names=self.category_names,
                                  category_scores=probs7[i]))
        return dets
