"""Prompt triggers for frozen text classifiers: soft, hard and embedding prompts.

A prompt trigger is ``k`` extra positions inserted into every tokenised input. It
does not know the model: its forward pass adds a description of the prompt to the
model inputs (a dict with ``input_ids`` and ``attention_mask``), and the text
model adapter (:class:`fairreprogram.models.TextClassifier`) embeds it, inserts it
after the first special token (or before the final one) and fixes the attention
mask, token types and positions. The keys it adds:

- ``"trigger_probs"``: ``(k, V)`` rows on the simplex; the adapter embeds them as
  mixtures of token embeddings (soft prompts, and hard prompts while training,
  where the rows are one-hot with straight-through gradients);
- ``"trigger_ids"``: ``(k,)`` token ids (hard prompts at evaluation);
- ``"trigger_embeds"``: ``(k, H)`` free vectors (embedding prompts);
- ``"trigger_insert"`` and ``"trigger_vocab"``: where to insert, and the
  fingerprint of the vocabulary the trigger was tuned for.

A prompt trigger is bound to a vocabulary size, a hidden size and a vocabulary
fingerprint (its "input shape" is ``(vocab_size, hidden_size)``); the adapter
refuses a trigger tuned for another model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from fairreprogram.triggers._base import Trigger, TriggerConfig, register_trigger
from fairreprogram.utils import check_choice, check_positive_int

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "PROMPT_INSERTIONS",
    "EmbeddingPromptTrigger",
    "HardPromptTrigger",
    "PromptConfig",
    "SoftPromptTrigger",
]

#: Where a prompt goes: after the first special token (CLS/BOS) or before the last (SEP/EOS).
PROMPT_INSERTIONS = ("after_cls", "before_sep")
_INITS = ("random", "uniform", "words")

_NOT_TEXT_SHAPE = (
    "{kind} trigger acts on token sequences, so input_shape must be (vocab_size, hidden_size); got {shape}."
)
_BAD_ID = (
    "{argument} holds token id {value}, outside the vocabulary of {size} tokens; expected ids in [0, {size})."
)
_NO_ALLOWED = (
    "the allowed vocabulary of this {kind} trigger is empty (allowed_ids={allowed} minus excluded_ids); "
    "expected at least one token it may use."
)
_INIT_NEEDS_IDS = "init='words' needs init_ids (one token id per trigger position); got {ids}."
_INIT_IDS_LENGTH = "init_ids={ids} has {found} ids; expected num_tokens={k} (or 1, repeated)."
_NO_TOKENIZER = (
    "this hard trigger has no tokenizer bound; call trigger.bind_tokenizer(tokenizer) or apply it "
    "through fairreprogram.models.TextClassifier, which binds its own."
)


@dataclasses.dataclass(frozen=True)
class PromptConfig(TriggerConfig):
    """Options of the prompt triggers.

    Parameters
    ----------
    vocab_size, hidden_size : int
        Rows and width of the model's token-embedding matrix (filled in from the
        model; the trigger refuses models with other values).
    num_tokens : int, default 5
        Number of trigger positions ``k``.
    insert : {"after_cls", "before_sep"}, default "after_cls"
        After the first special token, or just before the final separator (the
        original code's choice).
    init : {"random", "uniform", "words"}, default "random"
        Start from random scores, from the uniform distribution over the allowed
        vocabulary (for embedding prompts: the mean embedding), or from given tokens
        (``init_ids``).
    init_ids : tuple of int
        Token ids to start from with ``init="words"`` (one per position, or one).
    allowed_ids : tuple of int
        Tokens the trigger may use (empty: the whole vocabulary).
    excluded_ids : tuple of int
        Tokens it may never use: special and unused tokens (filled in from the
        tokenizer by the adapter).
    vocab_fingerprint : str
        Fingerprint of the tokenizer's vocabulary (filled in by the adapter).
    """

    vocab_size: int = 1
    hidden_size: int = 1
    num_tokens: int = 5
    insert: str = "after_cls"
    init: str = "random"
    init_ids: tuple[int, ...] = ()
    allowed_ids: tuple[int, ...] = ()
    excluded_ids: tuple[int, ...] = ()
    vocab_fingerprint: str = ""

    def __post_init__(self) -> None:
        check_positive_int("vocab_size", self.vocab_size)
        check_positive_int("hidden_size", self.hidden_size)
        check_positive_int("num_tokens", self.num_tokens)
        check_choice("insert", self.insert, PROMPT_INSERTIONS)
        check_choice("init", self.init, _INITS)
        for name in ("init_ids", "allowed_ids", "excluded_ids"):
            for value in getattr(self, name):
                if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < self.vocab_size:
                    raise ValueError(_BAD_ID.format(argument=name, value=value, size=self.vocab_size))
        if self.init == "words":
            if not self.init_ids:
                raise ValueError(_INIT_NEEDS_IDS.format(ids=list(self.init_ids)))
            if len(self.init_ids) not in (1, self.num_tokens):
                raise ValueError(
                    _INIT_IDS_LENGTH.format(
                        ids=list(self.init_ids), found=len(self.init_ids), k=self.num_tokens
                    )
                )


class _PromptTrigger(Trigger):
    """Shared parts: the vocabulary binding, the allowed-token mask and the output keys."""

    config_class = PromptConfig
    size_option = "num_tokens"
    build_options = ("allowed_words", "init_words")
    config: PromptConfig
    allowed: torch.Tensor

    def __init__(self, config: PromptConfig | None = None, **options: Any) -> None:
        super().__init__(config if config is not None else PromptConfig(**options))
        allowed = torch.zeros(self.config.vocab_size, dtype=torch.bool)
        if self.config.allowed_ids:
            allowed[list(self.config.allowed_ids)] = True
        else:
            allowed[:] = True
        if self.config.excluded_ids:
            allowed[list(self.config.excluded_ids)] = False
        if not bool(allowed.any()):
            raise ValueError(_NO_ALLOWED.format(kind=self.kind, allowed=list(self.config.allowed_ids)[:10]))
        self.register_buffer("allowed", allowed)
        self.tokenizer: Any = None

    @classmethod
    def shape_options(cls, input_shape: tuple[int, ...]) -> dict[str, Any]:
        if len(input_shape) != 2:
            raise ValueError(_NOT_TEXT_SHAPE.format(kind=cls.kind, shape=tuple(input_shape)))
        return {"vocab_size": int(input_shape[0]), "hidden_size": int(input_shape[1])}

    def input_shape(self) -> tuple[int, ...]:
        return (self.config.vocab_size, self.config.hidden_size)

    def bind_tokenizer(self, tokenizer: Any) -> None:
        """Remember the tokenizer that turns token ids into words (for :attr:`text`)."""
        self.tokenizer = tokenizer

    def _init_ids(self) -> torch.Tensor:
        ids = torch.as_tensor(self.config.init_ids, dtype=torch.long)
        return ids.expand(self.config.num_tokens) if len(ids) == 1 else ids

    def _describe(self, inputs: Mapping[str, Any], **prompt: torch.Tensor) -> dict[str, Any]:
        return {
            **inputs,
            **prompt,
            "trigger_insert": self.config.insert,
            "trigger_vocab": self.config.vocab_fingerprint,
        }


class _VocabularyPrompt(_PromptTrigger):
    """Soft and hard prompts: ``k`` rows of scores over the vocabulary."""

    def __init__(self, config: PromptConfig | None = None, **options: Any) -> None:
        super().__init__(config, **options)
        k, v = self.config.num_tokens, self.config.vocab_size
        if self.config.init == "random":
            scores = torch.randn(k, v)
        elif self.config.init == "uniform":
            scores = torch.zeros(k, v)
        else:  # start on the given words: a clear margin over every other token
            scores = torch.zeros(k, v)
            scores[torch.arange(k), self._init_ids()] = 10.0
        self.scores = nn.Parameter(scores)

    def distribution(self) -> torch.Tensor:
        """``(k, V)`` softmax of the scores over the allowed tokens (zero elsewhere)."""
        masked = self.scores.masked_fill(~self.allowed, float("-inf"))
        return torch.softmax(masked, dim=1)

    def token_ids(self) -> torch.Tensor:
        """``(k,)`` the most likely allowed token of every position."""
        return self.scores.detach().masked_fill(~self.allowed, float("-inf")).argmax(dim=1)

    def tokens(self) -> list[str]:
        """The tokens of :meth:`token_ids` (needs a bound tokenizer)."""
        if self.tokenizer is None:
            raise RuntimeError(_NO_TOKENIZER)
        return list(self.tokenizer.convert_ids_to_tokens(self.token_ids().tolist()))

    def plot(self, ax: Axes, *, feature_names: Sequence[str] | None = None) -> None:
        """Per position, the probability of its most likely token (labelled when a tokenizer is bound)."""
        with torch.no_grad():
            probs = self.distribution().max(dim=1).values.cpu().numpy()
        labels = self.tokens() if self.tokenizer is not None else [str(i) for i in self.token_ids().tolist()]
        ax.bar(range(len(probs)), probs, color="tab:blue")
        ax.set_xticks(range(len(probs)), labels, rotation=45, fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability of the top token")
        ax.set_title(f"{self.kind} trigger ({self.config.num_tokens} tokens)")


@register_trigger("soft")
class SoftPromptTrigger(_VocabularyPrompt):
    """``k`` positions, each a distribution over the vocabulary, embedded as a mixture.

    The distribution is a softmax over the allowed tokens, so it stays on the
    simplex; it is used in this soft form at evaluation too (the original's "soft").
    """

    def forward(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        return self._describe(inputs, trigger_probs=self.distribution())


@register_trigger("hard")
class HardPromptTrigger(_VocabularyPrompt):
    """``k`` real tokens chosen by a straight-through argmax (the original's "hard").

    While training, each position is the one-hot vector of its top allowed token in
    the forward pass and the softmax in the backward pass; at evaluation the model
    sees exactly those tokens (``trigger_ids``), so :attr:`text` prepended to the
    raw text through the tokenizer gives the same predictions.
    """

    def forward(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        if not self.training:
            return self._describe(inputs, trigger_ids=self.token_ids())
        soft = self.distribution()
        hard = F.one_hot(soft.argmax(dim=1), self.config.vocab_size).to(soft.dtype)
        return self._describe(inputs, trigger_probs=hard + soft - soft.detach())

    @property
    def text(self) -> str:
        """The trigger's words as text (needs a bound tokenizer)."""
        if self.tokenizer is None:
            raise RuntimeError(_NO_TOKENIZER)
        return str(self.tokenizer.convert_tokens_to_string(self.tokens())).strip()


@register_trigger("embedding")
class EmbeddingPromptTrigger(_PromptTrigger):
    """``k`` free continuous vectors in the model's embedding space.

    ``init="random"`` draws them from a normal with the embedding matrix's spread;
    ``"uniform"`` starts each at the mean allowed embedding and ``"words"`` at the
    embeddings of ``init_ids``. Those need the embedding matrix, so the adapter
    calls :meth:`initialise_from` when it builds the trigger.
    """

    def __init__(self, config: PromptConfig | None = None, **options: Any) -> None:
        super().__init__(config, **options)
        self.embeds = nn.Parameter(torch.randn(self.config.num_tokens, self.config.hidden_size) * 0.02)

    @torch.no_grad()
    def initialise_from(self, embedding: torch.Tensor) -> None:
        """Set the starting vectors from the model's ``(V, H)`` token-embedding matrix."""
        weight = embedding.detach().to(self.embeds.device, self.embeds.dtype)
        allowed = weight[self.allowed.to(weight.device)]
        if self.config.init == "random":
            self.embeds.copy_(torch.randn_like(self.embeds) * allowed.std() + allowed.mean(dim=0))
        elif self.config.init == "uniform":
            self.embeds.copy_(allowed.mean(dim=0).expand_as(self.embeds))
        else:
            self.embeds.copy_(weight[self._init_ids().to(weight.device)])

    def forward(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        return self._describe(inputs, trigger_embeds=self.embeds)
