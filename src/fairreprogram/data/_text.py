"""Text data: identity lexicons, raw and tokenized text datasets, CSV and CivilComments loaders.

Texts stay raw in a :class:`TextDataset` until :meth:`TextDataset.tokenize` (or
:meth:`TextData.tokenize`) turns them into a :class:`TokenizedTextDataset`: the token
ids of every text, computed once without padding, kept flat and cached on disk;
batches are padded to their own longest row. Splits follow the same four-way
protocol as the tabular and image loaders: ``train`` fits the base model, ``tune``
(carved from the training rows, disjoint from them) the fairness trigger, ``val``
selects models and ``test`` reports.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from fairreprogram.data._images import CACHE_DIR_ENV, _carve_tune
from fairreprogram.data._preprocess import _MISSING_COLUMNS
from fairreprogram.data._splits import SPLIT_NAMES, FourSplits, SplitFractions, stratified_assignment
from fairreprogram.data._tabular import _encode_groups, _encode_labels
from fairreprogram.utils import atomic_path, check_positive_int

__all__ = [
    "CIVILCOMMENTS_IDENTITIES",
    "TextData",
    "TextDataset",
    "TokenizedTextDataset",
    "identity_flags",
    "identity_groups",
    "load_civilcomments",
    "load_identity_terms",
    "load_text_csv",
]

#: The eight identity groups of WILDS CivilComments (and of the original Fairness
#: Reprogramming code): columns of ``all_data_with_identities.csv``.
CIVILCOMMENTS_IDENTITIES: tuple[str, ...] = (
    "male",
    "female",
    "LGBTQ",
    "christian",
    "muslim",
    "other_religions",
    "black",
    "white",
)

#: File name of the WILDS CivilComments table inside its folder.
CIVILCOMMENTS_FILE = "all_data_with_identities.csv"

#: Group names of a single identity flag (index 0: no term / identity, 1: some).
IDENTITY_GROUP_NAMES: tuple[str, str] = ("no_identity", "identity")

_CACHE_FORMAT = 1
_MAX_LENGTH_CAP = 512
_CHUNK = 4096  # texts per tokenizer call: bounds the Python lists of token ids
_IDENTITY_THRESHOLD = 0.5  # WILDS: an identity applies when half the raters saw it
_SHOW_ROWS = 5

# Split names a split column may hold (lower-cased), mapped to the protocol's names.
_SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "tune": "tune",
    "tuning": "tune",
    "dev": "val",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}

_NO_TERMS = "{argument}={value!r} holds no terms; expected {expected}."
_TERMS_FILE_EXPECTED = "a file with one term per line (blank lines and '#' comments are skipped)"
_TERMS_LIST_EXPECTED = "a non-empty list of non-empty terms"
_TERMS_IS_STRING = (
    "{argument}={value!r} is a single string; expected a list of terms (load_identity_terms() reads a file)."
)
_BAD_TERM = "{argument} holds {value!r}; expected only non-empty strings."
_BAD_LEXICON = (
    "lexicon={value!r} is not valid; expected a non-empty mapping of group name to a list of terms."
)
_BAD_TEXT = "texts[{position}]={value!r} is not valid; expected a string."
_BAD_IDENTITY_TERMS = (
    "identity_terms={value!r} is not valid; expected a path to a term file, a list of terms or a "
    "mapping of group name to terms."
)
_ONE_IDENTITY_GROUP = (
    "{argument}={value!r} flags {flagged} of {total} texts, which gives a single group {groups}; "
    "expected at least two groups to measure fairness between."
)
_SENSITIVE_CHOICE = (
    "sensitive_col={sensitive!r}, identity_terms={identity!r}: expected exactly one of them (group "
    "column(s), or identity terms to flag the texts with)."
)
_BAD_SENSITIVE_COL = (
    "sensitive_col={value!r} is not valid; expected a column name or a non-empty list of column names."
)
_EMPTY_TEXTS = (
    "{argument}={column!r} has {count} empty or missing text(s), at rows {rows}{more} (0-based data "
    "rows); expected a non-empty text on every row. Drop or fill them first."
)
_NO_FILE = "{argument}={path!r}: no such file; expected {expected}."
_BAD_SPLIT_VALUES = (
    "split_col={column!r} holds {values}; expected only the split names {expected} (case-insensitive)."
)
_EMPTY_SPLIT = "Split {split!r} is empty; expected at least one row. Use more data or other fractions."
_BAD_SEED = "seed={value!r} is not valid; expected an integer >= 0."
_BAD_THRESHOLD = "threshold={value!r} is not valid; expected a number in (0, 1]."
_UNKNOWN_IDENTITIES = (
    "{argument}={value!r} names {missing}, which are not columns of {path!r}; expected names among "
    "the identity columns {available}."
)
_BAD_CIVIL_SENSITIVE = (
    "sensitive={value!r} is not valid; expected 'any' or a non-empty list of identity column names."
)
_BAD_IDENTITIES = "identities={value!r} is not valid; expected a non-empty list of identity column names."
_LENGTHS = (
    "{kind} arrays disagree in length: texts {texts}, y {y}, z {z}; expected one entry per text in each."
)
_BAD_OFFSETS = (
    "offsets of shape {shape} (first {first}, last {last}) do not describe the {ids} token ids of "
    "{n} texts; expected n + 1 non-decreasing offsets from 0 to the number of ids."
)
_BAD_MAX_LENGTH = (
    "max_length={value!r} is not valid; expected an integer >= 1 (or None: the tokenizer's "
    "model_max_length, capped at 512)."
)
_BAD_PADDING_SIDE = "padding_side={value!r} is not valid; expected 'right' or 'left'."
_NO_PAD_TOKEN = (
    "tokenizer {name!r} has no pad_token_id; expected a tokenizer with a padding token "
    "(set tokenizer.pad_token first)."
)
_INDEX_RANGE = "indices reach {value}; expected positions in [-{n}, {n}) for the {n} examples."
_TRUNCATED = (
    "{count} of {total} text(s) are longer than max_length={max_length} tokens; they were truncated "
    "to {max_length} tokens."
)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(_BAD_SEED.format(value=seed))
    return int(seed)


# ---------------------------------------------------------------------------------------
# identity lexicons


def load_identity_terms(path: str | os.PathLike[str]) -> list[str]:
    """Read an identity lexicon: one term per line.

    Lines are stripped; blank lines and lines starting with ``#`` are skipped.

    Parameters
    ----------
    path : path-like
        The term file (UTF-8).

    Returns
    -------
    list of str
        The terms, in file order.

    Raises
    ------
    FileNotFoundError
        When ``path`` is not a file.
    ValueError
        When the file holds no terms.
    """
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise FileNotFoundError(
            _NO_FILE.format(argument="identity_terms", path=str(path), expected=_TERMS_FILE_EXPECTED)
        )
    lines = (line.strip() for line in resolved.read_text(encoding="utf-8").splitlines())
    terms = [line for line in lines if line and not line.startswith("#")]
    if not terms:
        raise ValueError(
            _NO_TERMS.format(argument="identity_terms", value=str(path), expected=_TERMS_FILE_EXPECTED)
        )
    return terms


def _clean_terms(terms: Any, argument: str = "terms") -> list[str]:
    if isinstance(terms, str):
        raise TypeError(_TERMS_IS_STRING.format(argument=argument, value=terms))
    cleaned = []
    for term in terms:
        if not isinstance(term, str) or not term.strip():
            raise ValueError(_BAD_TERM.format(argument=argument, value=term))
        cleaned.append(term.strip())
    if not cleaned:
        raise ValueError(_NO_TERMS.format(argument=argument, value=cleaned, expected=_TERMS_LIST_EXPECTED))
    return cleaned


def _term_pattern(terms: Sequence[str]) -> re.Pattern[str]:
    # A word may not continue on either side ((?<!\w) and (?!\w) equal \b for terms that
    # start and end with a word character, and also work for terms like "#metoo").
    # Inner whitespace of a term matches any run of whitespace. Longer alternatives go
    # first so the pattern reads well; with the boundaries the result is the same.
    parts = {r"\s+".join(re.escape(word) for word in term.split()) for term in _clean_terms(terms)}
    alternation = "|".join(sorted(parts, key=lambda part: (-len(part), part)))
    return re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", re.IGNORECASE)


def _check_texts(texts: Iterable[Any]) -> list[str]:
    out = list(texts)
    for position, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(_BAD_TEXT.format(position=position, value=text))
    return out


def identity_flags(texts: Iterable[str], terms: Sequence[str]) -> np.ndarray:
    """Flag the texts that mention any of ``terms`` as a whole word.

    Matching is case-insensitive and needs a word boundary on both sides: the term
    ``"jew"`` matches ``"Jew"`` and ``"jew,"`` but not ``"jewelry"`` (nor ``"jews"``,
    which needs its own entry). All terms form one compiled alternation.

    Parameters
    ----------
    texts : iterable of str
        The texts.
    terms : sequence of str
        The lexicon (e.g. from :func:`load_identity_terms`); a term of several words
        matches them separated by any whitespace.

    Returns
    -------
    numpy.ndarray
        ``int64`` 0/1 flags of shape ``(n,)``.
    """
    pattern = _term_pattern(terms)
    checked = _check_texts(texts)
    hits = (pattern.search(text) is not None for text in checked)
    return np.fromiter(hits, dtype=bool, count=len(checked)).astype(np.int64)


def identity_groups(texts: Iterable[str], lexicon: Mapping[str, Sequence[str]]) -> np.ndarray:
    """Flag each text once per group of a lexicon.

    Parameters
    ----------
    texts : iterable of str
        The texts.
    lexicon : mapping of str to sequence of str
        Group name to its terms, e.g. ``{"muslim": ["muslim", "islam"], "jewish": ["jew", "jews"]}``.

    Returns
    -------
    numpy.ndarray
        ``int64`` 0/1 flags of shape ``(n, g)``, one column per group in the order of
        ``lexicon``; see :func:`identity_flags` for the matching rule.
    """
    if not isinstance(lexicon, Mapping) or not lexicon:
        raise ValueError(_BAD_LEXICON.format(value=lexicon))
    checked = _check_texts(texts)
    columns = [identity_flags(checked, terms) for terms in lexicon.values()]
    return np.stack(columns, axis=1) if checked else np.zeros((0, len(columns)), dtype=np.int64)


# ---------------------------------------------------------------------------------------
# datasets


class TextDataset(Dataset[tuple[str, int, int]]):
    """``(text, y, z)`` triples of raw texts.

    Parameters
    ----------
    texts : sequence of str
        The texts.
    y, z : array-like
        Class and group index per text.
    num_classes, num_groups : int
        Number of classes and groups (may exceed the values present).
    """

    def __init__(
        self,
        texts: Sequence[str],
        y: np.ndarray | Sequence[int],
        z: np.ndarray | Sequence[int],
        *,
        num_classes: int,
        num_groups: int,
    ) -> None:
        self.texts = _check_texts(texts)
        self.y = np.ascontiguousarray(y, dtype=np.int64)
        self.z = np.ascontiguousarray(z, dtype=np.int64)
        if not len(self.texts) == len(self.y) == len(self.z):
            raise ValueError(
                _LENGTHS.format(kind="TextDataset", texts=len(self.texts), y=len(self.y), z=len(self.z))
            )
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.num_groups = check_positive_int("num_groups", num_groups)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, item: int) -> tuple[str, int, int]:
        return self.texts[item], int(self.y[item]), int(self.z[item])

    def tokenize(
        self,
        tokenizer: Any,
        *,
        max_length: int | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> TokenizedTextDataset:
        """Return the texts as token ids (computed once, cached on disk).

        Parameters
        ----------
        tokenizer : transformers.PreTrainedTokenizerBase
            A Hugging Face tokenizer (a fast one is much quicker) with a padding token.
        max_length : int, optional
            Longest token sequence kept, special tokens included; longer texts are
            truncated with one ``UserWarning`` per call. Default
            ``tokenizer.model_max_length``, capped at 512.
        cache_dir : path-like, optional
            Folder of the token cache; default ``$FAIRREPROGRAM_CACHE_DIR/fairreprogram/tokens``,
            else ``~/.cache/fairreprogram/tokens``.

        Returns
        -------
        TokenizedTextDataset
            The same examples, tokenized.
        """
        return _tokenize_all([self], tokenizer, max_length=max_length, cache_dir=cache_dir)[0]

    def __repr__(self) -> str:
        return f"TextDataset(texts={len(self)}, classes={self.num_classes}, groups={self.num_groups})"


Inputs = dict[str, torch.Tensor]


class TokenizedTextDataset(Dataset[tuple[Inputs, torch.Tensor, torch.Tensor]]):
    """Token ids of a set of texts, padded per batch to the batch's longest row.

    Built by :meth:`TextDataset.tokenize`. The ids of all texts are one flat array;
    text ``i`` owns ``ids[offsets[i]:offsets[i + 1]]``. :meth:`batch` pads with
    ``pad_token_id`` on ``padding_side`` using numpy index arithmetic (no loop over
    rows). ``dataset[i]`` is one example without padding: ``batch([i])`` without the
    batch dimension. ``dataset[indices]`` with a sequence of positions is
    ``batch(indices)``, so a ``DataLoader`` with a ``BatchSampler`` as ``sampler`` and
    ``batch_size=None`` yields padded batches.

    Parameters
    ----------
    ids : numpy.ndarray
        Flat token ids of all texts (``int32`` or ``int64``).
    offsets : numpy.ndarray
        ``n + 1`` non-decreasing positions into ``ids``, from 0 to ``len(ids)``.
    y, z : array-like
        Class and group index per text.
    num_classes, num_groups : int
        Number of classes and groups.
    pad_token_id : int
        Id written into padded positions.
    padding_side : {"right", "left"}, default "right"
        Where padding goes.
    token_type_ids : bool, default False
        Also return ``token_type_ids`` (zeros) in the inputs.
    texts : sequence of str, optional
        The source texts (kept for re-tokenizing and inspection).
    tokenizer_name : str, default ""
        ``name_or_path`` of the tokenizer.
    fingerprint : str, default ""
        Hash of the tokenizer's vocabulary and settings.
    max_length : int, optional
        The truncation length the ids were made with.

    Attributes
    ----------
    lengths : numpy.ndarray
        ``int64`` token count per example (for length-bucketed batches).
    """

    def __init__(
        self,
        ids: np.ndarray,
        offsets: np.ndarray,
        y: np.ndarray | Sequence[int],
        z: np.ndarray | Sequence[int],
        *,
        num_classes: int,
        num_groups: int,
        pad_token_id: int,
        padding_side: str = "right",
        token_type_ids: bool = False,
        texts: Sequence[str] | None = None,
        tokenizer_name: str = "",
        fingerprint: str = "",
        max_length: int | None = None,
    ) -> None:
        self.ids = np.asarray(ids)
        if self.ids.dtype not in (np.int32, np.int64):
            self.ids = self.ids.astype(np.int64)
        self.offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        self.y = np.ascontiguousarray(y, dtype=np.int64)
        self.z = np.ascontiguousarray(z, dtype=np.int64)
        n = len(self.y)
        ok = (
            self.offsets.ndim == 1
            and len(self.offsets) == n + 1
            and self.offsets[0] == 0
            and self.offsets[-1] == len(self.ids)
            and bool(np.all(np.diff(self.offsets) >= 0))
        )
        if not ok:
            raise ValueError(
                _BAD_OFFSETS.format(
                    shape=self.offsets.shape,
                    first=self.offsets[0] if len(self.offsets) else None,
                    last=self.offsets[-1] if len(self.offsets) else None,
                    ids=len(self.ids),
                    n=n,
                )
            )
        self.texts = None if texts is None else _check_texts(texts)
        count = n if self.texts is None else len(self.texts)
        if not count == n == len(self.z):
            raise ValueError(_LENGTHS.format(kind="TokenizedTextDataset", texts=count, y=n, z=len(self.z)))
        if padding_side not in ("right", "left"):
            raise ValueError(_BAD_PADDING_SIDE.format(value=padding_side))
        self.lengths = np.diff(self.offsets)
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.num_groups = check_positive_int("num_groups", num_groups)
        self.pad_token_id = int(pad_token_id)
        self.padding_side = padding_side
        self.token_type_ids = bool(token_type_ids)
        self.tokenizer_name = str(tokenizer_name)
        self.fingerprint = str(fingerprint)
        self.max_length = max_length

    def __len__(self) -> int:
        return len(self.y)

    def _positions(self, indices: Any) -> np.ndarray:
        positions = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if len(positions) and (positions.max() >= n or positions.min() < -n):
            worst = positions.max() if positions.max() >= n else positions.min()
            raise IndexError(_INDEX_RANGE.format(value=int(worst), n=n))
        return np.where(positions < 0, positions + n, positions)

    def batch(
        self, indices: Sequence[int] | np.ndarray | torch.Tensor
    ) -> tuple[Inputs, torch.Tensor, torch.Tensor]:
        """Return ``(inputs, y (B,), z (B,))`` for dataset positions ``indices``.

        ``inputs`` holds ``input_ids`` and ``attention_mask`` (``int64``, ``(B, L)``
        with ``L`` the longest row of this batch), and ``token_type_ids`` (zeros)
        when the tokenizer takes them.
        """
        positions = self._positions(indices)
        starts = self.offsets[positions]
        lengths = self.lengths[positions]
        width = int(lengths.max()) if len(positions) else 0
        # Column j of row b holds token j - shift[b] of that row, where it exists.
        shift = width - lengths if self.padding_side == "left" else np.zeros_like(lengths)
        relative = np.arange(width, dtype=np.int64)[None, :] - shift[:, None]
        mask = (relative >= 0) & (relative < lengths[:, None])
        input_ids = np.full((len(positions), width), self.pad_token_id, dtype=np.int64)
        input_ids[mask] = self.ids[(starts[:, None] + relative)[mask]]
        inputs = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(mask.astype(np.int64)),
        }
        if self.token_type_ids:
            inputs["token_type_ids"] = torch.zeros((len(positions), width), dtype=torch.int64)
        return inputs, torch.from_numpy(self.y[positions]), torch.from_numpy(self.z[positions])

    def __getitem__(self, item: Any) -> tuple[Inputs, torch.Tensor, torch.Tensor]:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            inputs, y, z = self.batch([int(item)])
            return {name: value[0] for name, value in inputs.items()}, y[0], z[0]
        return self.batch(item)

    def __repr__(self) -> str:
        return (
            f"TokenizedTextDataset(texts={len(self)}, tokens={len(self.ids)}, "
            f"max_length={self.max_length}, tokenizer={self.tokenizer_name!r}, "
            f"padding_side={self.padding_side!r})"
        )


# ---------------------------------------------------------------------------------------
# tokenizing and its cache


def _default_token_cache() -> Path:
    # Same base folder as the decoded-image caches; never beside the data.
    base = os.environ.get(CACHE_DIR_ENV) or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return Path(base) / "fairreprogram" / "tokens"


def _tokenizer_fingerprint(tokenizer: Any) -> str:
    """Hash of what decides the token ids: class, vocabulary, special tokens, pipeline."""
    digest = hashlib.sha256()
    digest.update(type(tokenizer).__name__.encode("utf-8"))
    vocab = sorted((str(token), int(index)) for token, index in tokenizer.get_vocab().items())
    digest.update(json.dumps(vocab, ensure_ascii=False).encode("utf-8"))
    special = sorted((str(k), str(v)) for k, v in getattr(tokenizer, "special_tokens_map", {}).items())
    digest.update(json.dumps(special, ensure_ascii=False).encode("utf-8"))
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # The fast tokenizer's full pipeline (normaliser, pre-tokeniser, post-processor),
        # less the truncation and padding state that each call resets.
        config = json.loads(backend.to_str())
        config.pop("truncation", None)
        config.pop("padding", None)
        digest.update(json.dumps(config, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    else:
        options = {k: repr(getattr(tokenizer, k, None)) for k in ("do_lower_case", "add_prefix_space")}
        digest.update(json.dumps(options, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()


def _resolve_max_length(tokenizer: Any, max_length: Any) -> int:
    if max_length is None:
        model_max = getattr(tokenizer, "model_max_length", None)
        # Tokenizers without a limit report a huge sentinel (about 1e30).
        if isinstance(model_max, (int, float)) and model_max >= 1:
            return int(min(model_max, _MAX_LENGTH_CAP))
        return _MAX_LENGTH_CAP
    if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < 1:
        raise ValueError(_BAD_MAX_LENGTH.format(value=max_length))
    return int(max_length)


def _cache_key(fingerprint: str, max_length: int, texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    digest.update(f"format={_CACHE_FORMAT};tokenizer={fingerprint};max_length={max_length};".encode())
    for text in texts:
        raw = text.encode("utf-8")
        digest.update(len(raw).to_bytes(8, "little"))
        digest.update(raw)
    return digest.hexdigest()


def _encode_chunk(tokenizer: Any, texts: list[str], max_length: int) -> tuple[list[list[int]], int]:
    """Token ids of ``texts`` truncated to ``max_length`` and how many were truncated."""
    plain = {"padding": False, "return_attention_mask": False, "return_token_type_ids": False}
    ids = tokenizer(texts, truncation=True, max_length=max_length, **plain)["input_ids"]
    # Only rows that reach max_length can have lost tokens; count those that did.
    full = [i for i, row in enumerate(ids) if len(row) >= max_length]
    if not full:
        return ids, 0
    whole = tokenizer([texts[i] for i in full], truncation=False, verbose=False, **plain)["input_ids"]
    return ids, sum(len(row) > max_length for row in whole)


def _encode(tokenizer: Any, texts: list[str], max_length: int) -> tuple[np.ndarray, np.ndarray, int]:
    pieces, counts, truncated = [], [], 0
    for start in range(0, len(texts), _CHUNK):
        rows, cut = _encode_chunk(tokenizer, texts[start : start + _CHUNK], max_length)
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        pieces.append(np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum())))
        counts.append(lengths)
        truncated += cut
    ids = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
    if len(ids) == 0 or int(ids.max()) < np.iinfo(np.int32).max:
        ids = ids.astype(np.int32)  # half the memory; batches are int64
    lengths = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return ids, offsets, truncated


def _read_cache(path: Path, n: int) -> tuple[np.ndarray, np.ndarray, int] | None:
    try:
        with np.load(path, allow_pickle=False) as stored:
            ids, offsets = stored["ids"], stored["offsets"]
            truncated, form = int(stored["truncated"]), int(stored["format"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    if form != _CACHE_FORMAT or offsets.shape != (n + 1,) or offsets[-1] != len(ids):
        return None
    return ids, offsets, truncated


def _write_cache(path: Path, ids: np.ndarray, offsets: np.ndarray, truncated: int) -> None:
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        # A file handle, so numpy does not append ".npz" to the temporary name.
        np.savez(
            handle,
            ids=ids,
            offsets=offsets,
            truncated=np.int64(truncated),
            format=np.int64(_CACHE_FORMAT),
        )


def _tokenize_all(
    datasets: Sequence[TextDataset],
    tokenizer: Any,
    *,
    max_length: int | None,
    cache_dir: str | os.PathLike[str] | None,
) -> list[TokenizedTextDataset]:
    """Tokenize several datasets in one pass (one cache file, at most one warning)."""
    length = _resolve_max_length(tokenizer, max_length)
    pad = getattr(tokenizer, "pad_token_id", None)
    name = str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)
    if pad is None:
        raise ValueError(_NO_PAD_TOKEN.format(name=name))
    side = str(getattr(tokenizer, "padding_side", "right"))
    if side not in ("right", "left"):
        raise ValueError(_BAD_PADDING_SIDE.format(value=side))
    texts = [text for dataset in datasets for text in dataset.texts]
    fingerprint = _tokenizer_fingerprint(tokenizer)
    folder = Path(cache_dir).expanduser() if cache_dir is not None else _default_token_cache()
    path = folder / f"tokens-{_cache_key(fingerprint, length, texts)[:40]}.npz"
    cached = _read_cache(path, len(texts))
    if cached is None:
        cached = _encode(tokenizer, texts, length)
        _write_cache(path, *cached)
    ids, offsets, truncated = cached
    if truncated:
        warnings.warn(
            _TRUNCATED.format(count=truncated, total=len(texts), max_length=length), UserWarning, stacklevel=3
        )
    token_types = "token_type_ids" in list(getattr(tokenizer, "model_input_names", []))
    out, first = [], 0
    for dataset in datasets:
        last = first + len(dataset)
        out.append(
            TokenizedTextDataset(
                ids[offsets[first] : offsets[last]],
                offsets[first : last + 1] - offsets[first],
                dataset.y,
                dataset.z,
                num_classes=dataset.num_classes,
                num_groups=dataset.num_groups,
                pad_token_id=int(pad),
                padding_side=side,
                token_type_ids=token_types,
                texts=dataset.texts,
                tokenizer_name=name,
                fingerprint=fingerprint,
                max_length=length,
            )
        )
        first = last
    return out


# ---------------------------------------------------------------------------------------
# the splits of one data set


AnyTextDataset = TextDataset | TokenizedTextDataset


@dataclass(eq=False)
class TextData(FourSplits[AnyTextDataset]):
    """Four text splits of one data set and how they were made.

    Attributes
    ----------
    train, tune, val, test : TextDataset or TokenizedTextDataset
        Disjoint splits; ``tune`` is carved from the training rows. Raw texts after
        loading, token ids after :meth:`tokenize`.
    class_names : list of str
        Class name per label index.
    group_names : list of str
        Group name per group index (sorted; intersectional groups are ``"a|b"``).
    target : str
        Label column.
    sensitive : list of str
        Sensitive columns, identity groups (``["identity"]`` for one flag) or
        CivilComments identity columns.
    spec : dict
        JSON-ready description; ``load_dataset(**spec)`` rebuilds the raw splits.
    """

    train: AnyTextDataset
    tune: AnyTextDataset
    val: AnyTextDataset
    test: AnyTextDataset
    class_names: list[str]
    group_names: list[str]
    target: str
    sensitive: list[str]
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def tokenized(self) -> bool:
        """Whether every split holds token ids."""
        return all(isinstance(split, TokenizedTextDataset) for split in self.splits.values())

    def tokenize(
        self,
        tokenizer: Any,
        *,
        max_length: int | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> TextData:
        """Return a copy whose splits are :class:`TokenizedTextDataset` s.

        All four splits are tokenized in one pass: one cache file and at most one
        truncation warning. Options as in :meth:`TextDataset.tokenize`.
        """
        raw = [_as_raw(split) for split in self.splits.values()]
        tokenized = _tokenize_all(raw, tokenizer, max_length=max_length, cache_dir=cache_dir)
        return TextData(
            **dict(zip(SPLIT_NAMES, tokenized, strict=True)),
            class_names=list(self.class_names),
            group_names=list(self.group_names),
            target=self.target,
            sensitive=list(self.sensitive),
            spec=dict(self.spec),
        )

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}={len(split)}" for name, split in self.splits.items())
        return (
            f"TextData(target={self.target!r}, sensitive={self.sensitive!r}, "
            f"groups={self.group_names!r}, tokenized={self.tokenized}, {sizes})"
        )


def _as_raw(split: AnyTextDataset) -> TextDataset:
    if isinstance(split, TextDataset):
        return split
    texts = split.texts if split.texts is not None else []
    return TextDataset(texts, split.y, split.z, num_classes=split.num_classes, num_groups=split.num_groups)


# ---------------------------------------------------------------------------------------
# loaders


def _read_table(path: Path, *, argument: str, sep: str | None, expected: str) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(_NO_FILE.format(argument=argument, path=str(path), expected=expected))
    if sep is None:
        sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    # Only empty fields are missing: a text such as "NA" or "null" is a text.
    return pd.read_csv(path, sep=sep, keep_default_na=False, na_values=[""])


def _require(frame: pd.DataFrame, columns: Sequence[str], argument: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            _MISSING_COLUMNS.format(
                argument=argument, missing=missing, available=list(map(str, frame.columns))
            )
        )


def _texts(frame: pd.DataFrame, column: str, argument: str) -> list[str]:
    values = frame[column]
    empty = values.isna().to_numpy() | (values.astype(str).str.strip() == "").to_numpy()
    if empty.any():
        rows = np.flatnonzero(empty)
        more = f" and {len(rows) - _SHOW_ROWS} more" if len(rows) > _SHOW_ROWS else ""
        raise ValueError(
            _EMPTY_TEXTS.format(
                argument=argument,
                column=column,
                count=len(rows),
                rows=rows[:_SHOW_ROWS].tolist(),
                more=more,
            )
        )
    return values.astype(str).tolist()


def _flag_groups(
    flags: np.ndarray, names: Sequence[str], *, argument: str, value: Any
) -> tuple[np.ndarray, list[str]]:
    """Groups of 0/1 flag columns: ``no_identity`` / ``identity`` for one unnamed flag."""
    if flags.ndim == 1:
        present = sorted(set(flags.tolist()))
        if len(present) < 2:
            raise ValueError(
                _ONE_IDENTITY_GROUP.format(
                    argument=argument,
                    value=value,
                    flagged=int(flags.sum()),
                    total=len(flags),
                    groups=[IDENTITY_GROUP_NAMES[i] for i in present],
                )
            )
        return flags.astype(np.int64), list(IDENTITY_GROUP_NAMES)
    keys = ["|".join(f"{n}={b}" for n, b in zip(names, row, strict=True)) for row in flags.tolist()]
    # Every key lists the same names in the same order, so sorting the keys sorts the bits.
    group_names = sorted(set(keys))
    if len(group_names) < 2:
        raise ValueError(
            _ONE_IDENTITY_GROUP.format(
                argument=argument,
                value=value,
                flagged=int(flags.any(axis=1).sum()),
                total=len(flags),
                groups=group_names,
            )
        )
    lookup = {name: i for i, name in enumerate(group_names)}
    return np.fromiter((lookup[k] for k in keys), dtype=np.int64, count=len(keys)), group_names


def _identity_sensitive(
    texts: list[str], identity_terms: Any
) -> tuple[np.ndarray, list[str], list[str], Any]:
    """Groups from an identity lexicon: ``(z, group_names, sensitive, spec value)``."""
    if isinstance(identity_terms, (str, os.PathLike)):
        terms = load_identity_terms(identity_terms)
        z, names = _flag_groups(
            identity_flags(texts, terms), [], argument="identity_terms", value=identity_terms
        )
        return z, names, ["identity"], str(Path(identity_terms).expanduser().resolve())
    if isinstance(identity_terms, Mapping):
        if not identity_terms:
            raise ValueError(_BAD_IDENTITY_TERMS.format(value=identity_terms))
        lexicon = {str(k): _clean_terms(v, f"identity_terms[{k!r}]") for k, v in identity_terms.items()}
        z, names = _flag_groups(
            identity_groups(texts, lexicon), list(lexicon), argument="identity_terms", value=identity_terms
        )
        return z, names, list(lexicon), lexicon
    if isinstance(identity_terms, Sequence):
        terms = _clean_terms(identity_terms, "identity_terms")
        z, names = _flag_groups(identity_flags(texts, terms), [], argument="identity_terms", value=terms)
        return z, names, ["identity"], terms
    raise ValueError(_BAD_IDENTITY_TERMS.format(value=identity_terms))


def _sensitive_columns(value: Any) -> list[str]:
    columns = _names_list(value)
    if columns is None:
        raise ValueError(_BAD_SENSITIVE_COL.format(value=value))
    return columns


def _official_rows(
    frame: pd.DataFrame, split_col: str, *, strata: np.ndarray, tune_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    labels = frame[split_col].astype(str).str.strip().str.lower()
    unknown = sorted(set(labels) - set(_SPLIT_ALIASES))
    if unknown:
        raise ValueError(
            _BAD_SPLIT_VALUES.format(column=split_col, values=unknown, expected=sorted(_SPLIT_ALIASES))
        )
    names = labels.map(_SPLIT_ALIASES).to_numpy()
    rows = {name: np.flatnonzero(names == name) for name in SPLIT_NAMES}
    if len(rows["tune"]) == 0 and len(rows["train"]):
        rows["train"], rows["tune"] = _carve(rows["train"], strata, tune_fraction=tune_fraction, seed=seed)
    return rows


def _carve(
    train: np.ndarray,
    strata: np.ndarray,
    *,
    tune_fraction: float | None,
    seed: int,
    tune_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split the training rows into (train, tune), stratified by group x label."""
    mask = _carve_tune(strata[train], tune_fraction=tune_fraction, tune_size=tune_size, seed=seed)
    return train[~mask], train[mask]


def _build(
    texts: list[str],
    rows: dict[str, np.ndarray],
    *,
    y: np.ndarray,
    z: np.ndarray,
    class_names: list[str],
    group_names: list[str],
    target: str,
    sensitive: list[str],
    spec: dict[str, Any],
) -> TextData:
    splits = {}
    for name in SPLIT_NAMES:
        picked = rows[name]
        if len(picked) == 0:
            raise ValueError(_EMPTY_SPLIT.format(split=name))
        splits[name] = TextDataset(
            [texts[i] for i in picked],
            y[picked],
            z[picked],
            num_classes=len(class_names),
            num_groups=len(group_names),
        )
    return TextData(
        **splits,
        class_names=class_names,
        group_names=group_names,
        target=target,
        sensitive=sensitive,
        spec=spec,
    )


def load_text_csv(
    path: str | os.PathLike[str],
    *,
    text_col: str = "text",
    label_col: str = "label",
    sensitive_col: str | Sequence[str] | None = None,
    identity_terms: str | os.PathLike[str] | Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    positive_label: Any = None,
    split_col: str | None = None,
    tune_fraction: float = 0.2,
    fractions: SplitFractions | Mapping[str, float] = SplitFractions(),  # noqa: B008
    seed: int = 0,
    sep: str | None = None,
) -> TextData:
    """Load a CSV or TSV of texts, labels and a sensitive attribute into four splits.

    Only empty fields count as missing (a text such as ``"NA"`` is kept).

    Parameters
    ----------
    path : path-like
        The table, with a header row.
    text_col, label_col : str
        Columns of the text and of the label.
    sensitive_col : str or sequence of str, optional
        Group column(s); several give intersectional groups named ``"a|b"``.
    identity_terms : path-like, sequence of str or mapping, optional
        Groups from the words of each text instead (see :func:`identity_flags`): a
        term file or a list of terms gives one flag and the groups
        ``["no_identity", "identity"]``; a mapping of group name to terms gives one
        flag per group, combined into groups named ``"muslim=0|jewish=1"``. Exactly
        one of ``sensitive_col`` and ``identity_terms`` is required.
    positive_label : object, optional
        Binary label: ``y = 1`` where the label equals it. Otherwise the classes are
        the sorted label values.
    split_col : str, optional
        Column of official split names (``train``, ``dev`` / ``val`` /
        ``validation``, ``test``, optionally ``tune``; case-insensitive). Without
        ``tune`` rows, ``tune_fraction`` of the training rows become ``tune``.
        Without the column the rows are split with ``fractions``.
    tune_fraction : float, default 0.2
        Share of the official training rows carved out as ``tune``.
    fractions : SplitFractions or mapping, default SplitFractions()
        Split shares without ``split_col``.
    seed : int, default 0
        Seed of the splits.
    sep : str, optional
        Field separator; default a tab for ``.tsv`` and ``.tab`` files, else a comma.

    Returns
    -------
    TextData
        Raw-text splits, stratified by group x label and disjoint; ``spec`` reloads
        them with ``load_dataset(**spec)``.
    """
    if (sensitive_col is None) == (identity_terms is None):
        raise ValueError(_SENSITIVE_CHOICE.format(sensitive=sensitive_col, identity=identity_terms))
    seed = _check_seed(seed)
    split_fractions = SplitFractions.coerce(fractions)
    resolved = Path(path).expanduser()
    frame = _read_table(resolved, argument="path", sep=sep, expected="a CSV or TSV file with a header row")
    groups = None if sensitive_col is None else _sensitive_columns(sensitive_col)
    _require(frame, [text_col], "text_col")
    _require(frame, [label_col], "label_col")
    if groups is not None:
        _require(frame, groups, "sensitive_col")
    if split_col is not None:
        _require(frame, [split_col], "split_col")
    texts = _texts(frame, text_col, "text_col")
    y, class_names = _encode_labels(
        frame[label_col], target=label_col, positive_label=positive_label, binary=False
    )
    if groups is not None:
        z, group_names = _encode_groups(frame, groups)
        sensitive, identity_spec = groups, None
    else:
        z, group_names, sensitive, identity_spec = _identity_sensitive(texts, identity_terms)
    strata = z * len(class_names) + y
    if split_col is not None:
        rows = _official_rows(frame, split_col, strata=strata, tune_fraction=tune_fraction, seed=seed)
    else:
        shares = tuple(split_fractions.to_dict()[name] for name in SPLIT_NAMES)
        assignment = stratified_assignment(strata, fractions=shares, seed=seed)
        rows = {name: np.flatnonzero(assignment == i) for i, name in enumerate(SPLIT_NAMES)}
    spec = {
        "spec": f"text:{resolved.resolve()}",
        "text_col": text_col,
        "label_col": label_col,
        "sensitive_col": groups,
        "identity_terms": identity_spec,
        "positive_label": positive_label,
        "split_col": split_col,
        "tune_fraction": tune_fraction,
        "fractions": split_fractions.to_dict(),
        "seed": seed,
        "sep": sep,
    }
    return _build(
        texts,
        rows,
        y=y,
        z=z,
        class_names=class_names,
        group_names=group_names,
        target=label_col,
        sensitive=sensitive,
        spec=spec,
    )


def _names_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _civil_identity_columns(sensitive: Any, identities: Any) -> list[str]:
    if sensitive == "any":
        columns = _names_list(identities)
        if columns is None:
            raise ValueError(_BAD_IDENTITIES.format(value=identities))
        return columns
    columns = _names_list(sensitive)
    if columns is None:
        raise ValueError(_BAD_CIVIL_SENSITIVE.format(value=sensitive))
    return columns


def load_civilcomments(
    path: str | os.PathLike[str],
    *,
    sensitive: str | Sequence[str] = "any",
    identities: Sequence[str] = CIVILCOMMENTS_IDENTITIES,
    threshold: float = 0.5,
    tune_fraction: float | None = None,
    seed: int = 0,
) -> TextData:
    """Load WILDS CivilComments (``all_data_with_identities.csv``) into four splits.

    The label is ``toxicity >= threshold`` (classes ``non_toxic``, ``toxic``). An
    identity applies where its column is ``>= 0.5`` (missing counts as 0). The
    official ``split`` column gives train, val and test; ``tune`` is carved from
    the official training rows (stratified by group x label, seeded) and is disjoint
    from the rows left in ``train``.

    Parameters
    ----------
    path : path-like
        The CSV or the folder holding it.
    sensitive : "any", str or sequence of str, default "any"
        ``"any"``: one flag, any of ``identities`` (groups ``no_identity`` /
        ``identity``). Column name(s): one flag each, combined into groups named
        ``"male=0|female=1"`` (only the combinations present).
    identities : sequence of str, default CIVILCOMMENTS_IDENTITIES
        Identity columns that ``sensitive="any"`` combines.
    threshold : float, default 0.5
        Toxicity score from which a comment counts as toxic.
    tune_fraction : float, optional
        Share of the official training rows moved to ``tune``. Default: as many rows
        as the official validation split, like the original Fairness Reprogramming
        code (its tuning set, "training2", is ``len(val)`` rows drawn at random from
        the official training split; about 17% of it).
    seed : int, default 0
        Seed of the tuning carve-out.

    Returns
    -------
    TextData
        Raw-text splits; ``spec`` reloads them with ``load_dataset(**spec)``.
    """
    resolved = Path(path).expanduser()
    if resolved.is_dir():
        resolved = resolved / CIVILCOMMENTS_FILE
    seed = _check_seed(seed)
    ok = isinstance(threshold, (int, float, np.number)) and not isinstance(threshold, bool)
    if not ok or not 0.0 < float(threshold) <= 1.0:
        raise ValueError(_BAD_THRESHOLD.format(value=threshold))
    columns = _civil_identity_columns(sensitive, identities)
    frame = _read_table(resolved, argument="path", sep=",", expected=f"{CIVILCOMMENTS_FILE} or its folder")
    _require(frame, ["comment_text", "toxicity", "split"], "path")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        argument = "identities" if sensitive == "any" else "sensitive"
        value = list(identities) if sensitive == "any" else sensitive
        known = [c for c in frame.columns if c in CIVILCOMMENTS_IDENTITIES] or list(map(str, frame.columns))
        raise ValueError(
            _UNKNOWN_IDENTITIES.format(
                argument=argument, value=value, missing=missing, path=str(resolved), available=known
            )
        )
    split = frame["split"].astype(str).str.strip().str.lower()
    unknown = sorted(set(split) - {"train", "val", "test"})
    if unknown:
        raise ValueError(
            _BAD_SPLIT_VALUES.format(column="split", values=unknown, expected=["train", "val", "test"])
        )
    texts = _texts(frame, "comment_text", "column")
    toxicity = pd.to_numeric(frame["toxicity"], errors="coerce")
    labels = pd.Series(np.where(toxicity.isna(), np.nan, toxicity >= float(threshold)))
    y, _ = _encode_labels(labels, target="toxicity", positive_label=None, binary=True)
    class_names = ["non_toxic", "toxic"]
    scores = frame[columns].apply(pd.to_numeric, errors="coerce").fillna(0.0).to_numpy(dtype=np.float64)
    flags = (scores >= _IDENTITY_THRESHOLD).astype(np.int64)
    if sensitive == "any":
        z, group_names = _flag_groups(flags.max(axis=1), [], argument="identities", value=f"any of {columns}")
        names = ["identity"]
    else:
        z, group_names = _flag_groups(flags, columns, argument="sensitive", value=columns)
        names = columns
    strata = z * len(class_names) + y
    rows = {name: np.flatnonzero(split.to_numpy() == name) for name in SPLIT_NAMES}
    size = len(rows["val"]) if tune_fraction is None else None
    rows["train"], rows["tune"] = _carve(
        rows["train"], strata, tune_fraction=tune_fraction, tune_size=size, seed=seed
    )
    spec = {
        "spec": f"civilcomments:{resolved.resolve()}",
        "sensitive": sensitive if isinstance(sensitive, str) else list(sensitive),
        "identities": list(identities),
        "threshold": float(threshold),
        "tune_fraction": tune_fraction,
        "seed": seed,
    }
    return _build(
        texts,
        rows,
        y=y,
        z=z,
        class_names=class_names,
        group_names=group_names,
        target="toxicity",
        sensitive=names,
        spec=spec,
    )
