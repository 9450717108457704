"""Freezing a model and the deployable "trigger then frozen model" wrapper."""

from __future__ import annotations

import torch
from torch import nn

from fairreprogram.triggers import Trigger
from fairreprogram.utils import as_class_logits

__all__ = ["ReprogrammedModel", "freeze"]


def freeze(model: nn.Module) -> nn.Module:
    """Put ``model`` in eval mode and turn off gradients for all its parameters."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class ReprogrammedModel(nn.Module):
    """A deployable model: the trigger applied to the input, then the frozen model.

    It needs only the input at inference, never the sensitive attribute. Calling
    ``train()`` on it trains the trigger only: the frozen model stays in eval mode
    (no dropout, fixed batch-norm statistics) and without gradients.
    """

    def __init__(self, trigger: Trigger, model: nn.Module) -> None:
        super().__init__()
        check = getattr(model, "check_trigger", None)
        if callable(check):  # models that bind triggers (text) refuse one tuned for another model
            check(trigger)
        self.trigger = trigger
        self.model = freeze(model)

    def train(self, mode: bool = True) -> ReprogrammedModel:
        """Set the trigger's mode; the frozen model always stays in eval mode."""
        self.training = mode
        self.trigger.train(mode)
        self.model.eval()
        return self

    def forward(self, x: object) -> torch.Tensor:
        """Return the frozen model's logits on the triggered input."""
        return self.model(self.trigger(x))

    @torch.no_grad()
    def predict_proba(self, x: object) -> torch.Tensor:
        """Class probabilities, shape ``(n, C)``."""
        return torch.softmax(as_class_logits(self(x)).float(), dim=1)

    @torch.no_grad()
    def predict(self, x: object) -> torch.Tensor:
        """Predicted class indices, shape ``(n,)``."""
        return self.predict_proba(x).argmax(dim=1)
