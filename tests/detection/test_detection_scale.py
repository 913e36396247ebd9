"""Boxes come back in the pixels of the image given, also when the network input has another
aspect ratio (x scaled by W_image / W_input, y by H_image / H_input, never swapped)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from katazuke.perception.detection import Detector, DetectorConfig
from katazuke.perception.detection.decode import decode
from katazuke.perception.detection.model import STRIDE


class _OneBoxNet(torch.nn.Module):
    """Head maps with a single confident box, centred at the same fraction ``(fx, fy)`` of any
    input, of a fixed size in input pixels (offsets zero, category 2)."""

    def __init__(self, fx: float, fy: float, w_in: float, h_in: float) -> None:
        super().__init__()
        self.fx, self.fy, self.w_in, self.h_in = fx, fy, w_in, h_in
        self.seen: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        b, _, h, w = x.shape
        self.seen.append((w, h))
        hg, wg = h // STRIDE, w // STRIDE
        heat = torch.full((b, 1, hg, wg), -10.0)
        heat[:, 0, int(self.fy * hg), int(self.fx * wg)] = 5.0
        size = torch.empty(b, 2, hg, wg)
        size[:, 0] = np.log(self.w_in / STRIDE)
        size[:, 1] = np.log(self.h_in / STRIDE)
        cat = torch.zeros(b, 6, hg, wg)
        cat[:, 2] = 10.0
        return {"heatmap": heat, "size": size, "offset": torch.zeros(b, 2, hg, wg), "category": cat}


def _expected_xyxy(net: _OneBoxNet, w_in: int, h_in: int, sx: float, sy: float) -> np.ndarray:
    cx = int(net.fx * (w_in // STRIDE)) * STRIDE
    cy = int(net.fy * (h_in // STRIDE)) * STRIDE
    return np.array([(cx - net.w_in / 2) * sx, (cy - net.h_in / 2) * sy,
                     (cx + net.w_in / 2) * sx, (cy + net.h_in / 2) * sy])


def test_decode_scales_x_and_y_separately() -> None:
    net = _OneBoxNet(0.25, 0.5, 40.0, 24.0)
    out = net(torch.zeros(1, 3, 240, 320))
    r = decode(out, STRIDE, (2.0, 0.5), 0.5, 0.5, 10)[0]
    assert len(r["boxes"]) == 1
    np.testing.assert_allclose(r["boxes"][0], _expected_xyxy(net, 320, 240, 2.0, 0.5), atol=1e-4)


@pytest.mark.parametrize("image_wh,input_wh", [((320, 240), (160, 240)), ((320, 240), (320, 120)),
                                               ((640, 240), (320, 240))])
def test_detector_maps_boxes_back_through_a_non_square_resize(image_wh, input_wh) -> None:
    (W, H), (w_in, h_in) = image_wh, input_wh
    net = _OneBoxNet(0.3, 0.6, 32.0, 20.0)
    det = Detector(DetectorConfig(score_threshold=0.5, classifier_weights="none"), model=net,
                   input_size=(w_in, h_in))
    found = det.detect(np.zeros((H, W, 3), np.uint8))
    assert net.seen == [(w_in, h_in)]          # the network saw the resized image
    assert len(found) == 1
    x0, y0, x1, y1 = _expected_xyxy(net, w_in, h_in, W / w_in, H / h_in)
    np.testing.assert_allclose(found[0].box_xywh, [x0, y0, x1 - x0, y1 - y0], atol=1e-4)
    assert found[0].category == det.category_names[2]
