"""The adversary: a small MLP that tries to recover Z from the frozen model's output."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fairreprogram.engine._criteria import Criterion, parse_criterion
from fairreprogram.utils import as_class_logits, check_positive_int

__all__ = ["Adversary"]

_BAD_LOGITS = "logits of shape {shape} are not valid; expected (n, {c})."


class Adversary(nn.Module):
    """Predicts the sensitive group from the model output (and, for EO, the label).

    The input features are built from ``s = softmax(logits * (1 + |c|))`` with a
    learned temperature ``c``. For demographic parity the adversary reads ``s``;
    for equalized odds it reads ``[s, s * onehot(y), onehot(y)]`` (the outer
    product flattened). With a binary label only the positive-class column is used,
    which gives exactly ``[s, s*(1-y), s*y, y]`` as in Zhang et al. (2018) and the
    original reprogramming code. Optionally the raw logits are appended.

    Parameters
    ----------
    num_classes
        Number of classes ``C`` of the frozen model (2 for binary).
    num_groups
        Number of sensitive groups ``k >= 2``.
    criterion
        ``"demographic_parity"`` or ``"equalized_odds"``.
    hidden_sizes
        Widths of the hidden layers (empty: a logistic-regression adversary).
    use_logits
        Also feed the raw logits.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        num_groups: int,
        criterion: str | Criterion = Criterion.EQUALIZED_ODDS,
        hidden_sizes: Sequence[int] = (32,),
        use_logits: bool = False,
    ) -> None:
        super().__init__()
        if check_positive_int("num_classes", num_classes) < 2:
            raise ValueError(f"num_classes={num_classes!r} is not valid; expected an integer >= 2.")
        if check_positive_int("num_groups", num_groups) < 2:
            raise ValueError(
                f"num_groups={num_groups!r} is not valid; the adversary needs a sensitive "
                "attribute with at least 2 groups."
            )
        self.num_classes = int(num_classes)
        self.num_groups = int(num_groups)
        self.criterion = parse_criterion(criterion)
        self.use_logits = bool(use_logits)
        self.temperature = nn.Parameter(torch.zeros(1))
        width = self._score_width()
        in_features = width
        if self.criterion is Criterion.EQUALIZED_ODDS:
            in_features += width * self.num_classes + self._label_width()
        if self.use_logits:
            in_features += self.num_classes
        layers: list[nn.Module] = []
        for size in hidden_sizes:
            layers += [nn.Linear(in_features, check_positive_int("hidden_sizes", size)), nn.ReLU()]
            in_features = size
        layers.append(nn.Linear(in_features, self.num_groups))
        self.net = nn.Sequential(*layers)

    def _score_width(self) -> int:
        return 1 if self.num_classes == 2 else self.num_classes

    def _label_width(self) -> int:
        return 1 if self.num_classes == 2 else self.num_classes

    def features(self, logits: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Build the adversary's input features from model logits (and labels)."""
        logits = as_class_logits(logits).float()
        if logits.shape[1] != self.num_classes:
            raise ValueError(_BAD_LOGITS.format(shape=tuple(logits.shape), c=self.num_classes))
        probs = torch.softmax(logits * (1.0 + self.temperature.abs()), dim=1)
        s = probs[:, 1:] if self.num_classes == 2 else probs
        parts = [s]
        if self.criterion is Criterion.EQUALIZED_ODDS:
            if y is None:
                raise ValueError("y=None is not valid for an equalized-odds adversary; pass the labels.")
            onehot = F.one_hot(y.long(), self.num_classes).to(s.dtype)
            parts.append((s.unsqueeze(2) * onehot.unsqueeze(1)).flatten(1))
            parts.append(onehot[:, 1:] if self.num_classes == 2 else onehot)
        if self.use_logits:
            parts.append(logits)
        return torch.cat(parts, dim=1)

    def forward(self, logits: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Return group logits of shape ``(n, num_groups)``."""
        return self.net(self.features(logits, y))

    def loss(self, logits: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the adversary's group prediction (mean over the batch)."""
        return F.cross_entropy(self(logits, y), z.long())
