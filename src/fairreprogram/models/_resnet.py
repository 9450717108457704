"""Residual image classifiers that normalise pixel-space inputs themselves.

The classifier takes images in ``[0, 1]`` and applies ``(x - mean) / std`` inside ``forward`` so that a
fairness trigger (a border or patch added to the image) acts in pixel space, before normalisation.
The ``resnet18`` backbone uses torchvision's parameter names, so a torchvision checkpoint loads with
:func:`load_torchvision_state_dict`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fairreprogram.models._files import read_model_files, write_model_files
from fairreprogram.utils import (
    check_choice,
    check_positive_int,
)

__all__ = ["RESNET_ARCHS", "ResNetClassifier", "ResNetConfig", "load_torchvision_state_dict"]

_HEAD_PREFIX = "fc."
_SHOW_KEYS = 5
_MISMATCH_MESSAGE = "state_dict does not match arch={arch!r}: {details}."


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


class _BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity or 1x1 conv-BN shortcut (torchvision names)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


def _stage(in_channels: int, out_channels: int, *, blocks: int, stride: int) -> nn.Sequential:
    layers = [_BasicBlock(in_channels, out_channels, stride)]
    layers += [_BasicBlock(out_channels, out_channels) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class _ResNet18(nn.Module):
    """ImageNet ResNet-18; attribute names match ``torchvision.models.resnet18``."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = _stage(64, 64, blocks=2, stride=1)
        self.layer2 = _stage(64, 128, blocks=2, stride=2)
        self.layer3 = _stage(128, 256, blocks=2, stride=2)
        self.layer4 = _stage(256, 512, blocks=2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class _ResNet20(nn.Module):
    """CIFAR ResNet-20 (He et al., 2016) with 1x1 conv shortcuts where the shape changes."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, 16)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = _stage(16, 16, blocks=3, stride=1)
        self.layer2 = _stage(16, 32, blocks=3, stride=2)
        self.layer3 = _stage(32, 64, blocks=3, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _conv_bn_relu(in_channels: int, out_channels: int, *, pool: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [
        _conv3x3(in_channels, out_channels),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class _Residual(nn.Module):
    """``x + f(x)`` for a shape-preserving ``f``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_bn_relu(channels, channels), _conv_bn_relu(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _ResNet9(nn.Module):
    """The small CIFAR ResNet-9 used in the fairness reprogramming reference code."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.prep = _conv_bn_relu(in_channels, 64)
        self.layer1 = _conv_bn_relu(64, 128, pool=True)
        self.res1 = _Residual(128)
        self.layer2 = _conv_bn_relu(128, 256, pool=True)
        self.layer3 = _conv_bn_relu(256, 512, pool=True)
        self.res2 = _Residual(512)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res1(self.layer1(self.prep(x)))
        x = self.res2(self.layer3(self.layer2(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


# One registry of backbones; the config's choices and RESNET_ARCHS come from it.
_BACKBONES: dict[str, Callable[[int, int], nn.Module]] = {
    "resnet18": _ResNet18,
    "resnet9": _ResNet9,
    "resnet20": _ResNet20,
}
RESNET_ARCHS: tuple[str, ...] = tuple(_BACKBONES)


def _check_stats(name: str, values: tuple[float, ...], in_channels: int, *, positive: bool) -> None:
    if len(values) != in_channels:
        raise ValueError(
            f"{name}={values!r} has {len(values)} entries; expected one per channel "
            f"(in_channels={in_channels})."
        )
    for value in values:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or (positive and value <= 0):
            expected = "finite numbers > 0" if positive else "finite numbers"
            raise ValueError(f"{name}={values!r} is not valid; expected {expected}.")


@dataclasses.dataclass(frozen=True)
class ResNetConfig:
    """Architecture of :class:`ResNetClassifier`.

    Attributes
    ----------
    arch
        Backbone, one of :data:`RESNET_ARCHS`.
    num_classes
        Number of output logits (2 for a binary task).
    in_channels
        Channels of the input images (3 for RGB, 1 for greyscale).
    mean, std
        Per-channel pixel statistics used for ``(x - mean) / std`` inside the model.
    """

    arch: str = "resnet18"
    num_classes: int = 2
    in_channels: int = 3
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)

    def __post_init__(self) -> None:
        check_choice("arch", self.arch, RESNET_ARCHS)
        if check_positive_int("num_classes", self.num_classes) < 2:
            raise ValueError(f"num_classes={self.num_classes!r} is not valid; expected >= 2.")
        check_positive_int("in_channels", self.in_channels)
        # JSON gives lists; keep tuples so the config stays hashable.
        object.__setattr__(self, "mean", tuple(self.mean))
        object.__setattr__(self, "std", tuple(self.std))
        _check_stats("mean", self.mean, self.in_channels, positive=False)
        _check_stats("std", self.std, self.in_channels, positive=True)


class ResNetClassifier(nn.Module):
    """Pixel-space normalisation followed by a residual backbone that outputs class logits.

    Inputs are images of shape ``(n, in_channels, H, W)`` with values in ``[0, 1]``; any ``H, W``
    large enough for the backbone's downsampling works thanks to adaptive pooling.
    """

    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor

    def __init__(self, config: ResNetConfig | None = None, **options: Any) -> None:
        super().__init__()
        if config is None:
            config = ResNetConfig(**options)
        elif options:
            raise TypeError(f"pass either config or keyword options, not both (got {sorted(options)}).")
        self.config = config
        shape = (1, config.in_channels, 1, 1)
        # Not persistent: the config is the single source of truth for the statistics.
        self.register_buffer("pixel_mean", torch.tensor(config.mean).reshape(shape), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(config.std).reshape(shape), persistent=False)
        self.backbone = _BACKBONES[config.arch](config.in_channels, config.num_classes)
        for module in self.backbone.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Map pixel-space images to the backbone's input space."""
        return (x - self.pixel_mean) / self.pixel_std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits of shape ``(n, num_classes)`` for pixel-space images ``x``."""
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"x has shape {tuple(x.shape)}; expected (n, {self.config.in_channels}, H, W) images."
            )
        return self.backbone(self.normalize(x))

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``model_config.json`` and ``model.safetensors`` into ``directory``."""
        return write_model_files(self, self.config, directory)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str]) -> ResNetClassifier:
        """Load a model written by :meth:`save_pretrained`; raise ``ValueError`` if the weights do not fit."""
        options, state = read_model_files(directory, cls.__name__)
        model = cls(**options)
        _raise_on_mismatch(model.config.arch, model.state_dict(), state, skip_prefix=None)
        model.load_state_dict(state)
        return model


def _compare(
    expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]
) -> tuple[list[str], list[str], list[str]]:
    """Missing keys, unexpected keys and shape mismatches (as text) of ``given`` against ``expected``."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    shapes = [
        f"{k!r}: checkpoint {tuple(given[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in given and tuple(given[k].shape) != tuple(expected[k].shape)
    ]
    return missing, unexpected, shapes


def _show(items: list[str], *, quote: bool = True) -> str:
    shown = [repr(i) if quote else i for i in items[:_SHOW_KEYS]]
    more = f", ... ({len(items) - _SHOW_KEYS} more)" if len(items) > _SHOW_KEYS else ""
    return "[" + ", ".join(shown) + more + "]"


def _raise_on_mismatch(
    arch: str,
    expected: Mapping[str, torch.Tensor],
    given: Mapping[str, torch.Tensor],
    *,
    skip_prefix: str | None,
) -> list[str]:
    """Raise ``ValueError`` describing how ``given`` differs; return keys forgiven by ``skip_prefix``."""
    missing, unexpected, shapes = _compare(expected, given)
    mismatched = [k for k in expected if k in given and tuple(given[k].shape) != tuple(expected[k].shape)]
    skipped: list[str] = []
    if skip_prefix is not None:
        skipped = [k for k in missing + unexpected + mismatched if k.startswith(skip_prefix)]
        missing = [k for k in missing if k not in skipped]
        unexpected = [k for k in unexpected if k not in skipped]
        shapes = [s for k, s in zip(mismatched, shapes, strict=True) if k not in skipped]
    details = []
    if missing:
        details.append(f"missing keys {_show(missing)}")
    if unexpected:
        details.append(f"unexpected keys {_show(unexpected)}")
    if shapes:
        details.append(f"shape mismatches {_show(shapes, quote=False)}")
    if details:
        raise ValueError(_MISMATCH_MESSAGE.format(arch=arch, details="; ".join(details)))
    return skipped


def load_torchvision_state_dict(
    model: ResNetClassifier, state_dict: Mapping[str, torch.Tensor], *, strict: bool = True
) -> list[str]:
    """Load a torchvision-style state dict (keys without the ``backbone.`` prefix) into ``model``.

    Parameters
    ----------
    model
        The classifier to fill in place; its normalisation buffers are left alone.
    state_dict
        Tensors keyed like ``torchvision.models.resnet18().state_dict()`` (``conv1.weight``, ...).
        Missing ``num_batches_tracked`` entries (older checkpoints) are filled with zero.
    strict
        If ``False``, classifier-head keys (``fc.*``) that are missing, unexpected or of another
        shape are skipped and keep the model's values, e.g. to reuse ImageNet weights for 2 classes.
        Every other difference raises.

    Returns
    -------
    list of str
        The skipped head keys (empty when ``strict`` is ``True``).

    Raises
    ------
    ValueError
        If the keys or shapes do not match, listing the first few missing, unexpected and
        mismatched keys.
    """
    if not isinstance(model, ResNetClassifier):
        raise TypeError(f"model must be a ResNetClassifier; got {type(model).__name__}.")
    expected = model.backbone.state_dict()
    given = dict(state_dict)
    for key, value in expected.items():
        if key.endswith(".num_batches_tracked") and key not in given:
            given[key] = torch.zeros_like(value)
    skipped = _raise_on_mismatch(
        model.config.arch, expected, given, skip_prefix=None if strict else _HEAD_PREFIX
    )
    loadable = {k: v for k, v in given.items() if k not in skipped}
    model.backbone.load_state_dict(loadable, strict=not skipped)
    return skipped
