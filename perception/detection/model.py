"""A small CenterNet-style single-stage detector (PyTorch, no torchvision).

Backbone: a stride-2 stem then depthwise-separable stages down to stride 32; a light
top-down pathway (nearest upsampling + lateral 1x1 convs) merges them back to stride 4.
The stride-4 head predicts, per cell:

- ``heatmap`` (1 channel, logits): class-agnostic objectness peak at each box centre;
- ``size`` (2): ``log(w / stride), log(h / stride)`` of the visible box;
- ``offset`` (2): sub-cell offset of the centre in cells, in [0, 1);
- ``category`` (C logits): the known categories (the ``unknown`` output is added at decode).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from katazuke.perception.detection.config import ModelConfig

__all__ = ["ObjectnessNet", "STRIDE", "IMAGE_MEAN", "IMAGE_STD", "normalize", "depth_channel",
           "INV_DEPTH_MEAN", "INV_DEPTH_STD", "MAX_INV_DEPTH"]

#: Output stride of every head map, pixels per cell.
STRIDE = 4
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
#: Inverse depth (1/m) is clipped to [0, MAX_INV_DEPTH] (nearer than 0.2 m reads as 0.2 m),
#: 0 marks "no reading", then normalised with these.
MAX_INV_DEPTH = 5.0
INV_DEPTH_MEAN = 0.8
INV_DEPTH_STD = 0.5


def _conv_bn(cin: int, cout: int, k: int = 3, s: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _DwSep(nn.Module):
    """Depthwise 3x3 (stride s) + pointwise 1x1, residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.dw = nn.Sequential(nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
                                nn.BatchNorm2d(cin), nn.ReLU(inplace=True))
        self.pw = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.dw(x))
        return F.relu(y + x if self.residual else y, inplace=True)


class ObjectnessNet(nn.Module):
    """The detector network.

    Input: ``(B, C, H, W)`` float32, RGB normalised with IMAGE_MEAN/STD, then (``in_channels``
    4) the :func:`depth_channel`; H and W multiples of 32.
    Output: dict of ``(B, ch, H/4, W/4)`` maps: heatmap (1), size (2), offset (2), category (C).
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        cfg = config or ModelConfig()
        self.config = cfg
        if cfg.in_channels not in (3, 4):
            raise ValueError(f"in_channels must be 3 (RGB) or 4 (RGB-D), got {cfg.in_channels}")
        c4, c8, c16, c32 = cfg.widths
        self.stem = nn.Sequential(_conv_bn(cfg.in_channels, 16, 3, 2), _DwSep(16, c4, 2), _DwSep(c4, c4))
        self.s8 = nn.Sequential(_DwSep(c4, c8, 2), _DwSep(c8, c8))
        self.s16 = nn.Sequential(_DwSep(c8, c16, 2), _DwSep(c16, c16), _DwSep(c16, c16))
        self.s32 = nn.Sequential(_DwSep(c16, c32, 2), _DwSep(c32, c32), _DwSep(c32, c32))
        h = cfg.head_width
        self.lat32 = _conv_bn(c32, h, 1)
        self.lat16 = _conv_bn(c16, h, 1)
        self.lat8 = _conv_bn(c8, h, 1)
        self.lat4 = _conv_bn(c4, h, 1)
        self.smooth16 = _DwSep(h, h)
        self.smooth8 = _DwSep(h, h)
        self.smooth4 = _DwSep(h, h)
        self.trunk = _DwSep(h, h)
        self.heatmap = nn.Conv2d(h, 1, 1)
        self.size = nn.Conv2d(h, 2, 1)
        self.offset = nn.Conv2d(h, 2, 1)
        self.category = nn.Conv2d(h, cfg.num_categories, 1)
        # Focal-loss prior: start with objectness ~0.01 everywhere (CenterNet/RetinaNet).
        nn.init.constant_(self.heatmap.bias, -4.6)
        nn.init.normal_(self.heatmap.weight, std=0.01)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f4 = self.stem(x)
        f8 = self.s8(f4)
        f16 = self.s16(f8)
        f32 = self.s32(f16)
        p = self.lat32(f32)
        p = self.smooth16(self.lat16(f16) + F.interpolate(p, size=f16.shape[-2:], mode="nearest"))
        p = self.smooth8(self.lat8(f8) + F.interpolate(p, size=f8.shape[-2:], mode="nearest"))
        p = self.smooth4(self.lat4(f4) + F.interpolate(p, size=f4.shape[-2:], mode="nearest"))
        p = self.trunk(p)
        return {"heatmap": self.heatmap(p), "size": self.size(p),
                "offset": torch.sigmoid(self.offset(p)), "category": self.category(p)}


def normalize(images: torch.Tensor) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 -> ``(B, 3, H, W)`` float32 normalised network input."""
    x = images.permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(IMAGE_MEAN, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def inverse_depth(depth) -> torch.Tensor:
    """Depth image(s) -> inverse depth, 1/m, 0 where there is no reading.

    Args:
        depth: ``(..., H, W)`` numpy array or tensor; float = metres (0, NaN, inf: no reading),
            integer = millimetres (0: no reading; the ``16UC1`` convention of ROS depth images).
    """
    d = torch.as_tensor(depth)
    if not torch.is_floating_point(d):
        d = d.float() / 1000.0
    d = d.float()
    valid = torch.isfinite(d) & (d > 0)
    inv = torch.where(valid, 1.0 / torch.where(valid, d, torch.ones_like(d)), torch.zeros_like(d))
    return inv.clamp_(0.0, MAX_INV_DEPTH)


def depth_channel(inv_depth: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` inverse depth (1/m, 0 = no reading) -> ``(B, 1, H, W)`` network channel."""
    return ((inv_depth - INV_DEPTH_MEAN) / INV_DEPTH_STD).unsqueeze(1)
