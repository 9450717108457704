"""Text data: identity flags, tokenized datasets and their cache, the CSV / CivilComments loaders."""

from __future__ import annotations

import inspect
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import transformers
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

from fairreprogram.data import (
    CIVILCOMMENTS_IDENTITIES,
    TextData,
    TextDataset,
    TokenizedTextDataset,
    _text,
    identity_flags,
    identity_groups,
    load_civilcomments,
    load_dataset,
    load_identity_terms,
    load_text_csv,
)
from fairreprogram.data._images import CACHE_DIR_ENV
from fairreprogram.data._preprocess import _MISSING_COLUMNS
from fairreprogram.data._tabular import _SINGLE_CLASS, _SINGLE_GROUP

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
IDENTITY = ["muslim", "jews", "women"]
NEUTRAL = ["cat", "dog", "mat", "house", "tree", "day"]
WORDS = [*NEUTRAL, *IDENTITY, "the", "a", "sat", "on", "big", "red", "jew", "people", "hate", "love"]


def _pattern(template: str) -> str:
    """A regex matching ``template`` with every ``{field}`` as a wildcard."""
    parts = re.split(r"\{[^}]*\}", template)
    return ".*".join(re.escape(part) for part in parts)


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))


def make_tokenizer(tmp_path: Path, *, padding_side: str = "right"):
    vocab = {word: i for i, word in enumerate([*SPECIAL, *WORDS])}
    cls = transformers.BertTokenizerFast
    if "vocab" in inspect.signature(cls.__init__).parameters:
        tokenizer = cls(vocab=vocab)
    else:  # transformers 4.x reads a vocab.txt
        file = tmp_path / "vocab.txt"
        file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
        tokenizer = cls(vocab_file=str(file))
    tokenizer.padding_side = padding_side
    return tokenizer


def make_frame(n: int = 80, *, seed: int = 0) -> pd.DataFrame:
    """Texts of 3 to 9 words; a third mention an identity term; label and group columns."""
    rng = np.random.default_rng(seed)
    texts, labels, groups = [], [], []
    for i in range(n):
        words = list(rng.choice(NEUTRAL, size=int(rng.integers(3, 10))))
        if i % 3 == 0:
            words[int(rng.integers(len(words)))] = IDENTITY[(i // 3) % len(IDENTITY)].capitalize()
        texts.append(" ".join(words))
        labels.append("toxic" if i % 2 else "fine")
        groups.append("a" if i % 4 < 2 else "b")
    split = ["train"] * (n // 2) + ["dev"] * (n // 4) + ["test"] * (n - n // 2 - n // 4)
    return pd.DataFrame({"text": texts, "label": labels, "group": groups, "split": split})


def write_csv(tmp_path: Path, frame: pd.DataFrame, name: str = "data.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False, sep="\t" if name.endswith(".tsv") else ",")
    return path


# ---------------------------------------------------------------------------------------
# identity lexicons


def test_identity_flags_whole_words_case_insensitive() -> None:
    texts = ["The JEWS said", "nice jewelry", "a Jew, here", "muslims", "Muslim.", "nothing"]
    assert identity_flags(texts, ["jew"]).tolist() == [0, 0, 1, 0, 0, 0]
    assert identity_flags(texts, ["jews", "muslim"]).tolist() == [1, 0, 0, 0, 1, 0]
    flags = identity_flags(texts, ["jew", "jews"])
    assert flags.dtype == np.int64 and flags.shape == (6,)


def test_identity_flags_escape_and_phrases() -> None:
    texts = ["c++ rocks", "cxx rocks", "african   american people", "african people"]
    assert identity_flags(texts, ["c++"]).tolist() == [1, 0, 0, 0]
    assert identity_flags(texts, ["african american"]).tolist() == [0, 0, 1, 0]


def test_identity_flags_errors() -> None:
    with pytest.raises(ValueError, match=_pattern(_text._NO_TERMS)):
        identity_flags(["a"], [])
    with pytest.raises(TypeError, match=_pattern(_text._TERMS_IS_STRING)):
        identity_flags(["a"], "jews")
    with pytest.raises(TypeError, match=_pattern(_text._BAD_TEXT)):
        identity_flags(["a", None], ["a"])


def test_identity_groups_one_column_per_group() -> None:
    texts = ["jews and muslims", "a muslim", "women", "none"]
    flags = identity_groups(texts, {"jewish": ["jews"], "muslim": ["muslim", "muslims"], "female": ["women"]})
    assert flags.shape == (4, 3)
    assert flags.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]
    with pytest.raises(ValueError, match=_pattern(_text._BAD_LEXICON)):
        identity_groups(texts, {})


def test_load_identity_terms(tmp_path: Path) -> None:
    path = tmp_path / "terms.txt"
    path.write_text("# identity terms\nmuslim\n\n  jews  \n#jew\nwomen\n", encoding="utf-8")
    assert load_identity_terms(path) == ["muslim", "jews", "women"]
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"identity_terms=.*holds no terms; expected"):
        load_identity_terms(empty)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_identity_terms(tmp_path / "missing.txt")


# ---------------------------------------------------------------------------------------
# tokenized datasets


def _dataset(texts: list[str]) -> TextDataset:
    n = len(texts)
    return TextDataset(texts, np.arange(n) % 2, np.arange(n) % 3 % 2, num_classes=2, num_groups=2)


TEXTS = ["the cat", "the big red dog sat on the mat", "a dog", "cat sat on a mat", "day"]


def test_text_dataset_items() -> None:
    data = _dataset(TEXTS)
    assert len(data) == 5
    assert data[1] == ("the big red dog sat on the mat", 1, 1)
    with pytest.raises(ValueError, match=_pattern(_text._LENGTHS)):
        TextDataset(["a"], [0, 1], [0], num_classes=2, num_groups=2)


@pytest.mark.parametrize("side", ["right", "left"])
def test_batch_pads_to_the_batch_maximum(tmp_path: Path, side: str) -> None:
    tokenizer = make_tokenizer(tmp_path, padding_side=side)
    data = _dataset(TEXTS).tokenize(tokenizer)
    expected = [tokenizer(t)["input_ids"] for t in TEXTS]
    assert data.lengths.dtype == np.int64
    assert data.lengths.tolist() == [len(ids) for ids in expected]
    picked = [0, 2, 3]
    inputs, y, z = data.batch(picked)
    width = max(len(expected[i]) for i in picked)
    assert width < int(data.lengths.max())  # the longest text is not in this batch
    assert set(inputs) == {"input_ids", "attention_mask", "token_type_ids"}
    for tensor in inputs.values():
        assert tensor.dtype == torch.int64 and tensor.shape == (3, width)
    pad = tokenizer.pad_token_id
    for row, i in enumerate(picked):
        ids = expected[i]
        padding = [pad] * (width - len(ids))
        mask = [1] * len(ids)
        zeros = [0] * (width - len(ids))
        if side == "right":
            assert inputs["input_ids"][row].tolist() == ids + padding
            assert inputs["attention_mask"][row].tolist() == mask + zeros
        else:
            assert inputs["input_ids"][row].tolist() == padding + ids
            assert inputs["attention_mask"][row].tolist() == zeros + mask
    assert inputs["token_type_ids"].sum() == 0
    assert y.tolist() == [0, 0, 1] and z.tolist() == [0, 0, 0]
    assert y.dtype == z.dtype == torch.int64


def test_getitem_is_one_unpadded_example(tmp_path: Path) -> None:
    tokenizer = make_tokenizer(tmp_path)
    data = _dataset(TEXTS).tokenize(tokenizer)
    inputs, y, _ = data[1]
    assert inputs["input_ids"].tolist() == tokenizer(TEXTS[1])["input_ids"]
    assert inputs["attention_mask"].all() and y.ndim == 0 and int(y) == 1
    last, _, _ = data[-1]
    assert last["input_ids"].tolist() == tokenizer(TEXTS[-1])["input_ids"]
    with pytest.raises(IndexError, match=_pattern(_text._INDEX_RANGE)):
        data.batch([0, 5])


def test_dataloader_with_batch_sampler(tmp_path: Path) -> None:
    data = _dataset(TEXTS).tokenize(make_tokenizer(tmp_path))
    loader = DataLoader(data, sampler=BatchSampler(SequentialSampler(data), 2, False), batch_size=None)
    batches = list(loader)
    assert [len(b[1]) for b in batches] == [2, 2, 1]
    assert batches[0][0]["input_ids"].shape[1] == int(data.lengths[:2].max())


def test_no_token_type_ids_when_the_tokenizer_takes_none(tmp_path: Path) -> None:
    tokenizer = make_tokenizer(tmp_path)
    tokenizer.model_input_names = ["input_ids", "attention_mask"]
    inputs, _, _ = _dataset(TEXTS).tokenize(tokenizer).batch([0, 1])
    assert set(inputs) == {"input_ids", "attention_mask"}


def test_truncation_warns_once(tmp_path: Path) -> None:
    tokenizer = make_tokenizer(tmp_path)
    # With [CLS] and [SEP]: 4, 5 (exactly max_length, not truncated), 8 and 9 tokens.
    texts = ["cat dog", "cat dog mat", "the cat sat on a mat", "the cat sat on the mat red"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = _dataset(texts).tokenize(tokenizer, max_length=5)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1
    assert "2 of 4 text(s)" in messages[0] and "truncated to 5 tokens" in messages[0]
    assert data.lengths.tolist() == [4, 5, 5, 5]
    assert data.max_length == 5
    assert data[2][0]["input_ids"][-1] == tokenizer.sep_token_id


def test_default_max_length_is_capped(tmp_path: Path) -> None:
    tokenizer = make_tokenizer(tmp_path)
    assert tokenizer.model_max_length > 512
    assert _dataset(TEXTS).tokenize(tokenizer).max_length == 512
    with pytest.raises(ValueError, match=_pattern(_text._BAD_MAX_LENGTH)):
        _dataset(TEXTS).tokenize(tokenizer, max_length=0)


def test_cache_skips_the_tokenizer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokenizer = make_tokenizer(tmp_path)
    original = type(tokenizer).__call__
    calls: list[int] = []

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(tokenizer), "__call__", counting)
    cache = tmp_path / "tokens"
    first = _dataset(TEXTS).tokenize(tokenizer, cache_dir=cache)
    assert calls and len(list(cache.glob("tokens-*.npz"))) == 1
    done = len(calls)
    second = _dataset(TEXTS).tokenize(tokenizer, cache_dir=cache)
    assert len(calls) == done
    assert np.array_equal(first.ids, second.ids) and np.array_equal(first.lengths, second.lengths)
    assert first.fingerprint == second.fingerprint != ""
    # Other texts or another max_length are another key.
    _dataset([*TEXTS, "new text"]).tokenize(tokenizer, cache_dir=cache)
    with pytest.warns(UserWarning, match="truncated"):
        _dataset(TEXTS).tokenize(tokenizer, cache_dir=cache, max_length=4)
    assert len(calls) > done and len(list(cache.glob("tokens-*.npz"))) == 3


def test_cache_default_folder_and_corrupt_file(tmp_path: Path) -> None:
    tokenizer = make_tokenizer(tmp_path)
    _dataset(TEXTS).tokenize(tokenizer)
    files = list((tmp_path / "cache" / "fairreprogram" / "tokens").glob("tokens-*.npz"))
    assert len(files) == 1
    files[0].write_bytes(b"not a zip file")
    again = _dataset(TEXTS).tokenize(tokenizer)  # rebuilt, not a crash
    assert again.lengths.tolist() == [len(tokenizer(t)["input_ids"]) for t in TEXTS]


def test_tokenizer_without_pad_token(tmp_path: Path) -> None:
    tokenizer = make_tokenizer(tmp_path)
    tokenizer.pad_token = None
    with pytest.raises(ValueError, match=_pattern(_text._NO_PAD_TOKEN)):
        _dataset(TEXTS).tokenize(tokenizer)


def test_tokenized_dataset_checks_offsets() -> None:
    with pytest.raises(ValueError, match=_pattern(_text._BAD_OFFSETS)):
        TokenizedTextDataset(
            np.arange(5), np.array([0, 2, 4]), [0, 1], [0, 1], num_classes=2, num_groups=2, pad_token_id=0
        )


# ---------------------------------------------------------------------------------------
# the CSV loader


def _disjoint_cover(data: TextData, n: int) -> None:
    texts = [t for split in data.splits.values() for t in split.texts]
    assert len(texts) == n and all(len(split) for split in data.splits.values())


def test_load_text_csv_random_split(tmp_path: Path) -> None:
    path = write_csv(tmp_path, make_frame())
    data = load_text_csv(path, sensitive_col="group")
    assert isinstance(data.train, TextDataset)
    assert data.class_names == ["fine", "toxic"] and data.group_names == ["a", "b"]
    assert data.num_classes == 2 and data.num_groups == 2 and data.sensitive == ["group"]
    sizes = {name: len(split) for name, split in data.splits.items()}
    assert sizes == {"train": 40, "tune": 16, "val": 8, "test": 16}
    _disjoint_cover(data, 80)
    assert not data.tokenized


def test_load_text_csv_intersectional_and_positive_label(tmp_path: Path) -> None:
    frame = make_frame()
    frame["other"] = np.where(np.arange(80) % 8 < 4, "x", "y")
    data = load_text_csv(write_csv(tmp_path, frame), sensitive_col=["group", "other"], positive_label="toxic")
    assert data.group_names == ["a|x", "a|y", "b|x", "b|y"]
    assert data.class_names == ["fine", "toxic"]


def test_load_text_csv_official_splits_carve_tune(tmp_path: Path) -> None:
    frame = make_frame()
    frame["split"] = frame["split"].str.upper()  # case-insensitive
    path = write_csv(tmp_path, frame, "data.tsv")  # tab-separated, found from the suffix
    data = load_text_csv(path, sensitive_col="group", split_col="split", tune_fraction=0.25)
    assert len(data.val) == 20 and len(data.test) == 20
    assert len(data.train) == 30 and len(data.tune) == 10
    train_rows = set(frame.loc[frame["split"] == "TRAIN", "text"])
    assert set(data.tune.texts) | set(data.train.texts) <= train_rows
    _disjoint_cover(data, 80)
    again = load_text_csv(path, sensitive_col="group", split_col="split", tune_fraction=0.25)
    assert again.tune.texts == data.tune.texts  # seeded
    other = load_text_csv(path, sensitive_col="group", split_col="split", tune_fraction=0.25, seed=1)
    assert other.tune.texts != data.tune.texts


def test_load_text_csv_identity_terms(tmp_path: Path) -> None:
    frame = make_frame()
    path = write_csv(tmp_path, frame)
    terms = tmp_path / "terms.txt"
    terms.write_text("# lexicon\n" + "\n".join(IDENTITY) + "\n", encoding="utf-8")
    from_file = load_text_csv(path, identity_terms=terms)
    from_list = load_text_csv(path, identity_terms=IDENTITY)
    assert from_file.group_names == ["no_identity", "identity"] == from_list.group_names
    assert from_file.sensitive == ["identity"]
    for split in from_file.splits.values():
        assert split.z.tolist() == identity_flags(split.texts, IDENTITY).tolist()
    assert from_file.train.texts == from_list.train.texts
    lexicon = {"muslim": ["muslim"], "jewish": ["jews"]}
    grouped = load_text_csv(path, identity_terms=lexicon)
    assert grouped.group_names == ["muslim=0|jewish=0", "muslim=0|jewish=1", "muslim=1|jewish=0"]
    assert grouped.sensitive == ["muslim", "jewish"]


def test_load_text_csv_errors(tmp_path: Path) -> None:
    frame = make_frame()
    path = write_csv(tmp_path, frame)
    with pytest.raises(ValueError, match=_pattern(_text._SENSITIVE_CHOICE)):
        load_text_csv(path)
    with pytest.raises(ValueError, match=_pattern(_text._SENSITIVE_CHOICE)):
        load_text_csv(path, sensitive_col="group", identity_terms=IDENTITY)
    for option, value in [("text_col", "body"), ("label_col", "y"), ("sensitive_col", "sex")]:
        kwargs = {"sensitive_col": "group", option: value}
        with pytest.raises(ValueError, match=_pattern(_MISSING_COLUMNS)) as error:
            load_text_csv(path, **kwargs)
        assert "'text', 'label', 'group', 'split'" in str(error.value)  # the available columns
    with pytest.raises(ValueError, match=_pattern(_text._NO_TERMS)):
        load_text_csv(path, identity_terms=[])
    empty_terms = tmp_path / "empty.txt"
    empty_terms.write_text("# none\n", encoding="utf-8")
    with pytest.raises(ValueError, match=_pattern(_text._NO_TERMS)):
        load_text_csv(path, identity_terms=empty_terms)
    with pytest.raises(ValueError, match=_pattern(_text._ONE_IDENTITY_GROUP)):
        load_text_csv(path, identity_terms=["zebra"])
    single = frame.assign(label="fine")
    with pytest.raises(ValueError, match=_pattern(_SINGLE_CLASS)):
        load_text_csv(write_csv(tmp_path, single, "single.csv"), sensitive_col="group")
    one_group = frame.assign(group="a")
    with pytest.raises(ValueError, match=_pattern(_SINGLE_GROUP)):
        load_text_csv(write_csv(tmp_path, one_group, "group.csv"), sensitive_col="group")
    bad_split = frame.assign(split=["train"] * 79 + ["holdout"])
    with pytest.raises(ValueError, match=_pattern(_text._BAD_SPLIT_VALUES)):
        load_text_csv(write_csv(tmp_path, bad_split, "split.csv"), sensitive_col="group", split_col="split")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_text_csv(tmp_path / "missing.csv", sensitive_col="group")


def test_load_text_csv_empty_texts(tmp_path: Path) -> None:
    frame = make_frame()
    frame.loc[[3, 10], "text"] = ""
    frame.loc[12, "text"] = "   "
    frame.loc[20, "text"] = "NA"  # a text, not a missing value
    with pytest.raises(ValueError, match=_pattern(_text._EMPTY_TEXTS)) as error:
        load_text_csv(write_csv(tmp_path, frame), sensitive_col="group")
    assert "3 empty or missing text(s), at rows [3, 10, 12]" in str(error.value)


def test_text_data_tokenize(tmp_path: Path) -> None:
    frame = make_frame()
    frame.loc[0, "text"] = " ".join(["cat"] * 40)
    data = load_text_csv(write_csv(tmp_path, frame), sensitive_col="group")
    tokenizer = make_tokenizer(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tokenized = data.tokenize(tokenizer, max_length=16)
    assert len([w for w in caught if "truncated" in str(w.message)]) == 1
    assert tokenized.tokenized and not data.tokenized
    for name, split in tokenized.splits.items():
        assert isinstance(split, TokenizedTextDataset)
        raw = data.splits[name]
        assert split.texts == raw.texts and np.array_equal(split.y, raw.y)
        assert split.lengths.tolist() == [min(len(tokenizer(t)["input_ids"]), 16) for t in raw.texts]
    assert tokenized.class_names == data.class_names and tokenized.spec == data.spec
    with pytest.warns(UserWarning, match="truncated"):
        again = tokenized.tokenize(tokenizer, max_length=8)
    assert int(again.train.lengths.max()) <= 8


# ---------------------------------------------------------------------------------------
# CivilComments


def make_civil(folder: Path) -> Path:
    """A tiny ``all_data_with_identities.csv`` in the WILDS schema."""
    rng = np.random.default_rng(3)
    n = 120
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "comment_text": [" ".join([*rng.choice(WORDS, size=5), str(i)]) for i in range(n)],
            "toxicity": np.where(np.arange(n) % 3 == 0, 0.8, rng.uniform(0, 0.49, size=n)),
            "split": ["train"] * 70 + ["val"] * 20 + ["test"] * 30,
        }
    )
    for k, name in enumerate(CIVILCOMMENTS_IDENTITIES):
        rows = np.arange(n)
        frame[name] = np.where(((rows + k) % 5 == 0) & (rows % 2 == 0), 1.0, 0.0)
    frame.loc[frame.index % 7 == 1, "male"] = np.nan  # missing: counts as 0
    frame.loc[frame.index % 10 == 2, "female"] = 0.5  # >= 0.5: the identity applies
    frame.loc[frame.index % 20 == 0, "female"] = 1.0  # some are male and female
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "all_data_with_identities.csv"
    frame.to_csv(path, index=False)
    return path


def test_load_civilcomments_any(tmp_path: Path) -> None:
    path = make_civil(tmp_path / "civil")
    frame = pd.read_csv(path)
    data = load_civilcomments(tmp_path / "civil")  # the folder works too
    assert data.class_names == ["non_toxic", "toxic"]
    assert data.group_names == ["no_identity", "identity"]
    # The tuning set has as many rows as the official val split, carved from train.
    assert len(data.tune) == len(data.val) == 20 and len(data.train) == 50 and len(data.test) == 30
    official_train = set(frame.loc[frame["split"] == "train", "comment_text"])
    assert set(data.tune.texts) <= official_train and set(data.train.texts) <= official_train
    _disjoint_cover(data, 120)
    identity = frame[list(CIVILCOMMENTS_IDENTITIES)].fillna(0).to_numpy() >= 0.5
    expected_z = dict(zip(frame["comment_text"], identity.any(axis=1).astype(int), strict=True))
    expected_y = dict(zip(frame["comment_text"], (frame["toxicity"] >= 0.5).astype(int), strict=True))
    for split in data.splits.values():
        assert split.z.tolist() == [expected_z[t] for t in split.texts]
        assert split.y.tolist() == [expected_y[t] for t in split.texts]
    fraction = load_civilcomments(path, tune_fraction=0.2)
    assert len(fraction.tune) == 14


def test_load_civilcomments_intersectional_and_errors(tmp_path: Path) -> None:
    path = make_civil(tmp_path)
    data = load_civilcomments(path, sensitive=["male", "female"])
    assert data.group_names == ["male=0|female=0", "male=0|female=1", "male=1|female=0", "male=1|female=1"]
    assert data.sensitive == ["male", "female"]
    with pytest.raises(ValueError, match=_pattern(_text._UNKNOWN_IDENTITIES)):
        load_civilcomments(path, sensitive=["male", "jewish"])
    with pytest.raises(ValueError, match=_pattern(_text._BAD_THRESHOLD)):
        load_civilcomments(path, threshold=0)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_civilcomments(tmp_path / "elsewhere")


# ---------------------------------------------------------------------------------------
# registry


def test_registry_routes_text_specs(tmp_path: Path) -> None:
    path = write_csv(tmp_path, make_frame())
    by_text = load_dataset(f"text:{path}", sensitive_col="group")
    by_csv = load_dataset(f"csv:{path}", text_col="text", sensitive_col="group")
    assert isinstance(by_text, TextData) and isinstance(by_csv, TextData)
    assert by_text.train.texts == by_csv.train.texts
    rebuilt = load_dataset(**by_text.spec)
    assert isinstance(rebuilt, TextData) and rebuilt.tune.texts == by_text.tune.texts
    with pytest.raises(ValueError, match="takes no option"):
        load_dataset(f"csv:{path}", text_col="text", sensitive_col="group", features=["x"])
    civil = load_dataset(f"civilcomments:{make_civil(tmp_path / 'civil')}", sensitive="male")
    assert isinstance(civil, TextData) and civil.group_names == ["male=0", "male=1"]
