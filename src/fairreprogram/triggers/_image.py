"""Image triggers in pixel space: a learned border, a corner patch and sparse pixels.

All three act on batches of shape ``(n, C, H, W)`` with values in ``[0, 1]``, before
any normalisation (the model applies its own). Each one writes learned pixels
``v = sigmoid(θ)`` where a binary mask ``m`` is on and keeps the (possibly resized)
image elsewhere: ``base(x) · (1 - m) + m · v``, clamped to ``[0, 1]``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from fairreprogram.triggers._base import Trigger, TriggerConfig, register_trigger
from fairreprogram.utils import atomic_path, check_choice, check_positive_int, check_probability

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "CORNERS",
    "BorderConfig",
    "BorderTrigger",
    "PatchConfig",
    "PatchTrigger",
    "SparseConfig",
    "SparseTrigger",
    "render_trigger_examples",
]

CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")

_BORDER_TOO_WIDE = (
    "image of {height}x{width} is too small for a border of {border}; expected 2 * border < "
    "min(height, width) so that the resized image keeps at least one pixel."
)
_PATCH_TOO_BIG = (
    "image of {height}x{width} is too small for a patch of size={size}; expected size <= {limit}."
)
_NOT_IMAGE_SHAPE = "{kind} trigger acts on images, so input_shape must be (C, H, W) per example; got {shape}."
_NOT_IMAGES = "images must be a batch of shape (n, C, H, W) with n >= 1; got shape {shape}."

# Pixels outside the trigger mask are drawn in this grey when the trigger is shown alone.
_BACKGROUND_GREY = 0.5
# render_trigger_examples shows the trigger on at most this many images.
_MAX_EXAMPLES = 8


@dataclasses.dataclass(frozen=True)
class _ImageConfig(TriggerConfig):
    """Image size shared by the image trigger configs (filled from the input shape)."""

    channels: int = 3
    height: int = 32
    width: int = 32

    def __post_init__(self) -> None:
        check_positive_int("channels", self.channels)
        check_positive_int("height", self.height)
        check_positive_int("width", self.width)


@dataclasses.dataclass(frozen=True)
class BorderConfig(_ImageConfig):
    """Options of :class:`BorderTrigger`.

    Attributes
    ----------
    channels, height, width
        Per-example image shape ``(C, H, W)``.
    border
        Width of the learned frame in pixels. Note: the original paper code takes
        the *inner* image size instead; here the image is resized to
        ``(H - 2 * border, W - 2 * border)``.
    """

    border: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("border", self.border)
        if 2 * self.border >= min(self.height, self.width):
            raise ValueError(
                _BORDER_TOO_WIDE.format(height=self.height, width=self.width, border=self.border)
            )


@dataclasses.dataclass(frozen=True)
class PatchConfig(_ImageConfig):
    """Options of :class:`PatchTrigger`.

    Attributes
    ----------
    channels, height, width
        Per-example image shape ``(C, H, W)``.
    size
        Side ``s`` of the square ``s x s`` patch, at most ``min(H, W)``.
    corner
        Where the patch goes: one of ``top_left``, ``top_right``, ``bottom_left``,
        ``bottom_right``.
    """

    size: int = 5
    corner: str = "bottom_right"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("size", self.size)
        check_choice("corner", self.corner, CORNERS)
        limit = min(self.height, self.width)
        if self.size > limit:
            raise ValueError(
                _PATCH_TOO_BIG.format(height=self.height, width=self.width, size=self.size, limit=limit)
            )


@dataclasses.dataclass(frozen=True)
class SparseConfig(_ImageConfig):
    """Options of :class:`SparseTrigger`.

    Attributes
    ----------
    channels, height, width
        Per-example image shape ``(C, H, W)``.
    fraction
        Share of pixel positions the trigger overwrites, in ``(0, 1]``; it picks
        ``k = max(1, round(fraction * H * W))`` positions.
    """

    fraction: float = 0.05

    def __post_init__(self) -> None:
        super().__post_init__()
        check_probability("fraction", self.fraction, allow_zero=False)

    @property
    def num_pixels(self) -> int:
        """Number ``k`` of pixel positions the trigger overwrites."""
        return max(1, round(self.fraction * self.height * self.width))


class _StraightThroughTopK(torch.autograd.Function):
    """Hard top-k mask of ``probs`` forward; pass the gradient through unchanged backward."""

    @staticmethod
    def forward(ctx: object, probs: torch.Tensor, k: int) -> torch.Tensor:
        hard = torch.zeros_like(probs)
        hard[torch.topk(probs, k).indices] = 1.0
        return hard

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


class _ImageTrigger(Trigger):
    """Shared machinery of the image triggers: shape checks, blending and plotting."""

    config: _ImageConfig

    @classmethod
    def shape_options(cls, input_shape: tuple[int, ...]) -> dict[str, object]:
        """``channels``, ``height`` and ``width`` from a ``(C, H, W)`` input shape."""
        if len(input_shape) != 3:
            raise ValueError(_NOT_IMAGE_SHAPE.format(kind=cls.kind, shape=tuple(input_shape)))
        channels, height, width = (int(v) for v in input_shape)
        return {"channels": channels, "height": height, "width": width}

    def input_shape(self) -> tuple[int, ...]:
        return (self.config.channels, self.config.height, self.config.width)

    def pattern(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Learned pixels ``v`` of shape ``(C, H, W)`` and binary mask ``m`` of shape ``(1, H, W)``."""
        raise NotImplementedError

    def _base(self, x: torch.Tensor) -> torch.Tensor:
        """The image the trigger is drawn over (the input itself unless overridden)."""
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the trigger to images of shape ``(n, C, H, W)`` with values in ``[0, 1]``."""
        self.check_input_shape(tuple(x.shape[1:]))
        values, mask = self.pattern()
        return (self._base(x) * (1 - mask) + mask * values).clamp(0.0, 1.0)

    def trigger_image(self) -> torch.Tensor:
        """The trigger alone as a ``(C, H, W)`` image: learned pixels on the mask, grey elsewhere."""
        with torch.no_grad():
            values, mask = self.pattern()
            return (mask * values + (1 - mask) * _BACKGROUND_GREY).clamp(0.0, 1.0)

    def plot(self, ax: Axes, *, feature_names: Sequence[str] | None = None) -> None:
        """Show the trigger alone as an image (grey where it keeps the input).

        ``feature_names`` is ignored: an image has no per-feature labels.
        """
        channels = self.config.channels
        _show_image(ax, self.trigger_image())
        note = "" if channels in (1, 3) else f", mean of {channels} channels"
        ax.set_title(
            f"{self.kind} trigger ({self.num_trainable_parameters():,} parameters{note})", fontsize=8
        )


def _show_image(ax: Axes, image: torch.Tensor) -> None:
    """Draw one ``(C, H, W)`` image in ``[0, 1]``: RGB for 3 channels, grey otherwise."""
    pixels = image.detach().float().cpu()
    if pixels.shape[0] == 3:
        ax.imshow(pixels.permute(1, 2, 0).numpy(), vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        # One channel is grey by nature; other counts have no colour mapping, so show the mean.
        ax.imshow(pixels.mean(dim=0).numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


@register_trigger("border")
class BorderTrigger(_ImageTrigger):
    """A learned frame of width ``border`` around the image, shrunk to fit inside it.

    The input is resized (bilinear, no antialiasing) to ``(H - 2b, W - 2b)`` and
    placed in the centre; the frame pixels are ``sigmoid(θ)`` of a full ``(C, H, W)``
    parameter of which only the frame is used (and counted by
    :meth:`num_trainable_parameters`). Unlike the original paper code, whose size
    argument is the inner image size, ``border`` is the frame width.
    """

    config_class = BorderConfig
    size_option = "border"
    config: BorderConfig

    def __init__(self, config: BorderConfig | None = None, **options: object) -> None:
        super().__init__(config if config is not None else BorderConfig(**options))  # type: ignore[arg-type]
        c, h, w, b = self.config.channels, self.config.height, self.config.width, self.config.border
        self.pixels = nn.Parameter(torch.zeros(c, h, w))
        mask = torch.ones(1, h, w)
        mask[:, b : h - b, b : w - b] = 0.0
        self.frame_mask: torch.Tensor
        self.register_buffer("frame_mask", mask)

    def pattern(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.sigmoid(self.pixels), self.frame_mask

    def num_trainable_parameters(self) -> int:
        """Frame pixels times channels: the parameters that reach the output."""
        if not self.pixels.requires_grad:
            return 0
        return int(self.frame_mask.sum().item()) * self.config.channels

    def _base(self, x: torch.Tensor) -> torch.Tensor:
        b = self.config.border
        inner = (self.config.height - 2 * b, self.config.width - 2 * b)
        small = F.interpolate(x, size=inner, mode="bilinear", align_corners=False, antialias=False)
        return F.pad(small, (b, b, b, b))


@register_trigger("patch")
class PatchTrigger(_ImageTrigger):
    """A learned ``size x size`` patch (``sigmoid(θ)``) that replaces one corner of the image."""

    config_class = PatchConfig
    size_option = "size"
    config: PatchConfig

    def __init__(self, config: PatchConfig | None = None, **options: object) -> None:
        super().__init__(config if config is not None else PatchConfig(**options))  # type: ignore[arg-type]
        c, s = self.config.channels, self.config.size
        self.pixels = nn.Parameter(torch.zeros(c, s, s))
        mask = torch.zeros(1, self.config.height, self.config.width)
        rows, cols = self.patch_slices()
        mask[:, rows, cols] = 1.0
        self.patch_mask: torch.Tensor
        self.register_buffer("patch_mask", mask)

    def patch_slices(self) -> tuple[slice, slice]:
        """Row and column slices of the patch inside an ``H x W`` image."""
        h, w, s = self.config.height, self.config.width, self.config.size
        top = 0 if self.config.corner.startswith("top") else h - s
        left = 0 if self.config.corner.endswith("left") else w - s
        return slice(top, top + s), slice(left, left + s)

    def pattern(self) -> tuple[torch.Tensor, torch.Tensor]:
        rows, cols = self.patch_slices()
        h, w = self.config.height, self.config.width
        # F.pad order is (left, right, top, bottom).
        padding = (cols.start, w - cols.stop, rows.start, h - rows.stop)
        return F.pad(torch.sigmoid(self.pixels), padding), self.patch_mask


@register_trigger("sparse")
class SparseTrigger(_ImageTrigger):
    """Learned values on the ``k`` pixel positions with the highest learned scores.

    The positions are a hard top-k of ``sigmoid(scores)`` in the forward pass, learned
    with a straight-through estimator; each selected position takes learned values
    ``sigmoid(θ)`` in every channel.
    """

    config_class = SparseConfig
    size_option = "fraction"
    config: SparseConfig

    def __init__(self, config: SparseConfig | None = None, **options: object) -> None:
        super().__init__(config if config is not None else SparseConfig(**options))  # type: ignore[arg-type]
        c, h, w = self.config.channels, self.config.height, self.config.width
        # Small random scores break ties, so the first top-k is a random set of pixels.
        self.scores = nn.Parameter(0.01 * torch.randn(h * w))
        self.pixels = nn.Parameter(torch.zeros(c, h, w))

    def mask(self) -> torch.Tensor:
        """Binary ``(1, H, W)`` mask of the selected pixels (straight-through gradient)."""
        hard = _StraightThroughTopK.apply(torch.sigmoid(self.scores), self.config.num_pixels)
        return hard.reshape(1, self.config.height, self.config.width)

    def pattern(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.sigmoid(self.pixels), self.mask()


def render_trigger_examples(trigger: Trigger, images: torch.Tensor, path: str | os.PathLike[str]) -> Path:
    """Write a PNG with the trigger alone and applied to up to 8 of ``images``.

    ``images`` is a batch ``(n, C, H, W)`` in ``[0, 1]``; the file is written atomically.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if images.dim() != 4 or images.shape[0] == 0:
        raise ValueError(_NOT_IMAGES.format(shape=tuple(images.shape)))
    device = next(iter(trigger.buffers()), next(trigger.parameters(), images)).device
    shown = images[:_MAX_EXAMPLES].to(device)
    was_training = trigger.training
    trigger.eval()
    with torch.no_grad():
        triggered = trigger(shown)
    trigger.train(was_training)
    figure = Figure(figsize=(1.8 * (1 + shown.shape[0]), 2.2))
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 1 + shown.shape[0], squeeze=False)[0]
    trigger.plot(axes[0])
    for i, ax in enumerate(axes[1:]):
        _show_image(ax, triggered[i])
        ax.set_title(f"example {i}", fontsize=8)
    figure.tight_layout()
    target = Path(path)
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format="png")
    return target
