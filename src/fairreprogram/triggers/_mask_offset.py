"""Mask-and-offset trigger for tabular inputs: ``x * m + delta``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from fairreprogram.triggers._base import Trigger, TriggerConfig, register_trigger
from fairreprogram.utils import check_positive_int

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["MaskOffsetConfig", "MaskOffsetTrigger"]

_FEATURE_NAMES = (
    "feature_names has {found} names, but the trigger has num_features={expected}; "
    "expected one name per input feature."
)

# Wider triggers show only the features they change most, so that labels stay readable.
_MAX_PLOTTED_FEATURES = 40


@dataclasses.dataclass(frozen=True)
class MaskOffsetConfig(TriggerConfig):
    """Options of :class:`MaskOffsetTrigger`.

    Attributes
    ----------
    num_features
        Width of the model's input feature vector.
    learn_mask
        Learn the binary feature mask ``m`` (straight-through estimator); if false,
        ``m`` stays all ones and only the offset is learned.
    mask_init
        Initial mask score; any value > 0 keeps every feature (``sigmoid > 0.5``), so
        a fresh trigger is the identity. Small values let the mask flip within few
        steps; large ones make dropping a feature slow.
    """

    num_features: int = 1
    learn_mask: bool = True
    mask_init: float = 0.5

    def __post_init__(self) -> None:
        check_positive_int("num_features", self.num_features)


class _StraightThroughBinary(torch.autograd.Function):
    """Threshold at 0.5 forward; pass the gradient through unchanged backward."""

    @staticmethod
    def forward(ctx: object, probs: torch.Tensor) -> torch.Tensor:
        return (probs > 0.5).to(probs.dtype)

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
        return grad


@register_trigger("mask_offset")
class MaskOffsetTrigger(Trigger):
    """Per-feature binary mask and additive offset on (preprocessed) tabular features.

    The trigger computes ``x * m + delta``. The mask ``m`` is binary in the forward
    pass (``sigmoid(scores) > 0.5``) and learned with a straight-through estimator
    through ``sigmoid(scores)``; ``delta`` is a free offset. It starts as the identity.
    """

    config_class = MaskOffsetConfig
    config: MaskOffsetConfig

    def __init__(self, config: MaskOffsetConfig | None = None, **options: object) -> None:
        super().__init__(config if config is not None else MaskOffsetConfig(**options))  # type: ignore[arg-type]
        d = self.config.num_features
        self.mask_scores = nn.Parameter(
            torch.full((d,), float(self.config.mask_init)), requires_grad=self.config.learn_mask
        )
        self.offset = nn.Parameter(torch.zeros(d))

    @classmethod
    def shape_options(cls, input_shape: tuple[int, ...]) -> dict[str, object]:
        """``num_features`` is the last dimension of the input."""
        return {"num_features": int(input_shape[-1])}

    def input_shape(self) -> tuple[int, ...]:
        return (self.config.num_features,)

    def mask(self) -> torch.Tensor:
        """The binary mask as used in the forward pass (with straight-through gradient)."""
        return _StraightThroughBinary.apply(torch.sigmoid(self.mask_scores))

    def _plotted_features(self, mask: np.ndarray, offset: np.ndarray) -> np.ndarray:
        if mask.size <= _MAX_PLOTTED_FEATURES:
            return np.arange(mask.size)
        # Dropped features first, then the largest offsets; shown in feature order.
        change = (mask < 0.5) * (np.abs(offset).max() + 1.0) + np.abs(offset)
        return np.sort(np.argsort(-change, kind="stable")[:_MAX_PLOTTED_FEATURES])

    def plot(self, ax: Axes, *, feature_names: Sequence[str] | None = None) -> None:
        """Horizontal bars of the mask ``m`` and the offset ``δ`` per feature.

        With more than 40 features only the 40 that change most are drawn (dropped
        features first, then the largest ``|δ|``), and the title says so.
        """
        d = self.config.num_features
        names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(d)]
        if len(names) != d:
            raise ValueError(_FEATURE_NAMES.format(found=len(names), expected=d))
        with torch.no_grad():
            mask = self.mask().cpu().numpy()
            offset = self.offset.detach().cpu().numpy()
        shown = self._plotted_features(mask, offset)
        ypos = np.arange(shown.size)
        ax.barh(ypos - 0.2, mask[shown], 0.4, label="mask m (1 keeps the feature)", color="tab:gray")
        ax.barh(ypos + 0.2, offset[shown], 0.4, label="offset δ", color="tab:blue")
        labels = [names[i] + ("  (dropped)" if mask[i] < 0.5 else "") for i in shown]
        ax.set_yticks(ypos, labels, fontsize=7)
        ax.invert_yaxis()
        ax.axvline(0.0, color="0.3", linewidth=0.8)
        ax.set_xlabel("value")
        title = f"{self.kind} trigger: x·m + δ"
        if shown.size < d:
            title += f" ({shown.size} of {d} features, those changed most)"
        ax.set_title(title)
        ax.legend(fontsize=7, loc="best")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply ``x * m + delta`` to a batch of shape ``(n, num_features)``."""
        if x.dim() != 2 or x.shape[1] != self.config.num_features:
            self.check_input_shape(tuple(x.shape[1:]))
        return x * self.mask() + self.offset
