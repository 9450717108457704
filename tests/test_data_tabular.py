import json
import re
import string

import numpy as np
import pandas as pd
import pytest
import torch

from fairreprogram.data import (
    ADULT_COLUMNS,
    SplitFractions,
    TabularPreprocessor,
    TabularSplit,
    available_datasets,
    default_data_dir,
    load_adult,
    load_arrests,
    load_compas,
    load_csv,
    load_dataset,
    load_tabular,
    register_dataset,
)
from fairreprogram.data._builtin import _ADULT_BAD_FORMAT, _FIXED_OPTION
from fairreprogram.data._preprocess import (
    _BAD_STATE,
    _MISSING_COLUMNS,
    _NON_FINITE_COLUMN,
    _NOT_FITTED,
)
from fairreprogram.data._registry import (
    _DUPLICATE,
    _NEEDS_PATH,
    _NO_SPEC,
    _TAKES_NO_PATH,
    _UNKNOWN_SCHEME,
)
from fairreprogram.data._splits import (
    _FRACTION_RANGE,
    _FRACTION_SUM,
    _FRACTIONS_TYPE,
    _SPLIT_LENGTHS,
)
from fairreprogram.data._tabular import (
    _BAD_SEED,
    _EMPTY_FRAME,
    _FILE_NOT_FOUND,
    _NOT_BINARY,
    _POSITIVE_LABEL_SINGLE_CLASS,
    _SINGLE_CLASS,
    _SINGLE_GROUP,
    _SPLIT_TOO_SMALL,
    _TARGET_IN_FEATURES,
)

SPLITS = ("train", "tune", "val", "test")


def pattern(template: str) -> str:
    """Regex for a message template: literal parts escaped, every field a wildcard."""
    parts = []
    for literal, field, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if field is not None:
            parts.append(".*")
    return "".join(parts)


def make_frame(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    colour = rng.choice(["Black", "White"], size=n, p=[0.3, 0.7])
    sex = rng.choice(["Female", "Male"], size=n)
    age = rng.normal(40, 10, size=n).round()
    checks = rng.integers(0, 6, size=n)
    job = rng.choice(["a", "b", "c"], size=n)
    p = np.where(colour == "White", 0.8, 0.5) - 0.05 * (checks > 3)
    released = np.where(rng.random(n) < p, "Yes", "No")
    return pd.DataFrame(
        {
            "released": released,
            "colour": colour,
            "sex": sex,
            "age": age,
            "checks": checks,
            "job": job,
        }
    )


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()


def load(frame: pd.DataFrame, **kwargs):
    options = {"target": "released", "sensitive": "colour", "positive_label": "Yes"}
    options.update(kwargs)
    return load_tabular(frame, **options)


# ---------------------------------------------------------------------------- splits


def test_splits_disjoint_and_covering(frame):
    data = load(frame)
    indices = [data.splits[name].index for name in SPLITS]
    joined = np.concatenate(indices)
    assert len(joined) == len(frame)
    assert np.array_equal(np.sort(joined), np.arange(len(frame)))
    for i, a in enumerate(indices):
        for b in indices[i + 1 :]:
            assert not np.intersect1d(a, b).size


def test_sizes_follow_fractions(frame):
    fractions = SplitFractions(train=0.4, tune=0.3, val=0.1, test=0.2)
    data = load(frame, fractions=fractions)
    for name in SPLITS:
        assert abs(len(data.splits[name]) - getattr(fractions, name) * len(frame)) <= 2


def test_stratification_keeps_group_label_rates(frame):
    data = load(frame)
    y = (frame["released"] == "Yes").to_numpy()
    for g, name in enumerate(data.group_names):
        overall = y[frame["colour"].to_numpy() == name].mean()
        share = (frame["colour"] == name).mean()
        for split_name in SPLITS:
            split = data.splits[split_name]
            assert abs(split.y[split.z == g].mean() - overall) < 0.03
            assert abs((split.z == g).mean() - share) < 0.02


def test_split_arrays_match_source_rows(frame):
    data = load(frame)
    split = data.tune
    assert split.X.dtype == np.float32 and split.X.shape == (len(split), data.num_features)
    assert split.y.dtype == np.int64 and split.z.dtype == np.int64
    rows = frame.iloc[split.index]
    assert np.array_equal(split.y, (rows["released"] == "Yes").to_numpy().astype(np.int64))
    names = np.asarray(data.group_names)[split.z]
    assert np.array_equal(names, rows["colour"].to_numpy())


def test_seed_changes_assignment_and_is_reproducible(frame):
    a, b, c = load(frame, seed=1), load(frame, seed=1), load(frame, seed=2)
    assert np.array_equal(a.train.index, b.train.index)
    assert not np.array_equal(np.sort(a.train.index), np.sort(c.train.index))


def test_to_dataset(frame):
    split = load(frame).val
    dataset = split.to_dataset()
    x, y, z = dataset[0]
    assert len(dataset) == len(split)
    assert x.dtype == torch.float32 and y.dtype == torch.long and z.dtype == torch.long


def test_split_fractions_validation():
    with pytest.raises(ValueError, match=pattern(_FRACTION_RANGE)) as info:
        SplitFractions(train=1.2)
    assert "train" in str(info.value)
    with pytest.raises(ValueError, match=pattern(_FRACTION_RANGE)):
        SplitFractions(val=0)
    with pytest.raises(ValueError, match=pattern(_FRACTION_SUM)):
        SplitFractions(train=0.6)
    with pytest.raises(TypeError, match=pattern(_FRACTIONS_TYPE)):
        SplitFractions.coerce({"train": 1.0})
    assert SplitFractions.coerce(SplitFractions().to_dict()) == SplitFractions()


def test_test_frame_is_the_test_split(frame):
    pool, official = frame.iloc[:700], frame.iloc[700:]
    data = load(pool, test_frame=official)
    assert len(data.test) == len(official)
    assert np.array_equal(data.test.index, np.arange(len(official)))
    assert sum(len(data.splits[name]) for name in SPLITS[:3]) == len(pool)
    train_share = SplitFractions().without_test()[0]
    assert abs(len(data.train) - train_share * len(pool)) <= 2


def test_summary(frame):
    summary = load(frame).summary()
    json.dumps(summary)
    assert set(summary["splits"]) == set(SPLITS)
    assert set(summary["splits"]["train"]["groups"]) == {"Black", "White"}
    white = summary["splits"]["train"]["groups"]["White"]["positive_rate"]
    black = summary["splits"]["train"]["groups"]["Black"]["positive_rate"]
    assert white > black


# ---------------------------------------------------------------------------- preprocessing


def test_preprocessor_fitted_on_train_only(frame):
    official = frame.iloc[800:].copy()
    official.loc[official.index[0], "age"] = 1e6
    official.loc[official.index[1], "job"] = "never-seen"
    data = load(frame.iloc[:800], test_frame=official)
    train_rows = frame.iloc[data.train.index]
    mean, scale = data.preprocessor.numeric_["age"]
    assert mean == pytest.approx(train_rows["age"].mean())
    assert scale == pytest.approx(train_rows["age"].std(ddof=0))
    age = data.feature_names.index("age")
    assert abs(data.train.X[:, age].mean()) < 1e-5
    assert data.train.X[:, age].std() == pytest.approx(1.0, abs=1e-4)
    jobs = [i for i, n in enumerate(data.feature_names) if n.startswith("job=")]
    assert data.test.X[1, jobs].sum() == 0
    assert np.all(data.train.X[:, jobs].sum(axis=1) == 1)


def test_preprocessor_feature_names_constant_column_and_missing_category():
    frame = pd.DataFrame(
        {"x": [1.0, 1.0, 1.0], "c": ["b", None, "a"], "flag": [True, False, True], "k": [3, 1, 3]}
    )
    pre = TabularPreprocessor(categorical=["k"]).fit(frame)
    assert pre.feature_names_ == [
        "x",
        "c=a",
        "c=b",
        "c=missing",
        "flag=False",
        "flag=True",
        "k=1",
        "k=3",
    ]
    out = pre.transform(frame)
    assert out.dtype == np.float32
    assert np.all(out[:, 0] == 0)
    assert out[1].tolist() == [0, 0, 0, 1, 1, 0, 1, 0]


def test_preprocessor_round_trip(frame):
    data = load(frame)
    state = json.loads(json.dumps(data.preprocessor.to_dict()))
    clone = TabularPreprocessor.from_dict(state)
    columns = data.preprocessor.columns_
    assert clone.feature_names_ == data.feature_names
    assert np.array_equal(clone.transform(frame[columns]), data.preprocessor.transform(frame))
    assert np.array_equal(clone.transform(frame.iloc[data.val.index]), data.val.X)


def test_preprocessor_errors(frame):
    with pytest.raises(ValueError, match=pattern(_NOT_FITTED)):
        TabularPreprocessor().transform(frame)
    pre = TabularPreprocessor().fit(frame, ["age", "job"])
    with pytest.raises(ValueError, match=pattern(_MISSING_COLUMNS)):
        pre.transform(frame.drop(columns="job"))
    with pytest.raises(ValueError, match=pattern(_BAD_STATE)):
        TabularPreprocessor.from_dict({"kind": "something else"})
    bad = frame.assign(age=np.nan)
    with pytest.raises(ValueError, match=pattern(_NON_FINITE_COLUMN)):
        pre.transform(bad)


# ---------------------------------------------------------------------------- groups, features


def test_intersectional_groups(frame):
    data = load(frame, sensitive=["colour", "sex"])
    assert data.group_names == ["Black|Female", "Black|Male", "White|Female", "White|Male"]
    assert data.num_groups == 4
    rows = frame.iloc[data.test.index]
    expected = (rows["colour"] + "|" + rows["sex"]).to_numpy()
    assert np.array_equal(np.asarray(data.group_names)[data.test.z], expected)


def test_include_sensitive_changes_features(frame):
    with_s = load(frame, include_sensitive=True)
    without = load(frame, include_sensitive=False)
    assert "colour=White" in with_s.feature_names
    assert not any(name.startswith("colour=") for name in without.feature_names)
    assert with_s.num_features == without.num_features + 2
    explicit = load(frame, features=["age"], include_sensitive=True)
    assert explicit.feature_names == ["age", "colour=Black", "colour=White"]


def test_nan_in_categorical_is_a_category(frame):
    frame.loc[:5, "job"] = None
    data = load(frame)
    assert "job=missing" in data.feature_names


def test_labels_without_positive_label(frame):
    data = load(frame, positive_label=None)
    assert data.class_names == ["No", "Yes"]
    multi = frame.assign(released=np.arange(len(frame)) % 3)
    data = load(multi, positive_label=None, binary=False)
    assert data.class_names == ["0", "1", "2"] and data.num_classes == 3
    one_vs_rest = load(multi, positive_label=2)
    assert one_vs_rest.class_names == ["not 2", "2"]


# ---------------------------------------------------------------------------- errors


def test_missing_columns(frame):
    with pytest.raises(ValueError, match=pattern(_MISSING_COLUMNS)) as info:
        load(frame, target="nope")
    assert "target" in str(info.value) and "colour" in str(info.value)
    with pytest.raises(ValueError, match=pattern(_MISSING_COLUMNS)):
        load(frame, sensitive="race")
    with pytest.raises(ValueError, match=pattern(_MISSING_COLUMNS)):
        load(frame, features=["age", "height"])
    with pytest.raises(ValueError, match=pattern(_MISSING_COLUMNS)):
        load(frame, test_frame=frame.drop(columns="job"))


def test_target_in_features(frame):
    with pytest.raises(ValueError, match=pattern(_TARGET_IN_FEATURES)):
        load(frame, features=["age", "released"])


def test_single_group(frame):
    with pytest.raises(ValueError, match=pattern(_SINGLE_GROUP)):
        load(frame.assign(colour="White"))


def test_not_binary(frame):
    multi = frame.assign(released=np.arange(len(frame)) % 3)
    with pytest.raises(ValueError, match=pattern(_NOT_BINARY)) as info:
        load(multi, positive_label=None)
    assert "positive_label" in str(info.value) and "released" in str(info.value)


def test_single_class(frame):
    with pytest.raises(ValueError, match=pattern(_SINGLE_CLASS)):
        load(frame.assign(released="Yes"), positive_label=None)
    with pytest.raises(ValueError, match=pattern(_POSITIVE_LABEL_SINGLE_CLASS)):
        load(frame, positive_label="Maybe")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_numeric_feature(frame, bad):
    frame.loc[[3, 7], "age"] = bad
    with pytest.raises(ValueError, match=pattern(_NON_FINITE_COLUMN)) as info:
        load(frame)
    assert "'age'" in str(info.value) and " 2 " in str(info.value)


def test_split_too_small(frame):
    with pytest.raises(ValueError, match=pattern(_SPLIT_TOO_SMALL)) as info:
        load(frame.iloc[:150])
    assert "'val'" in str(info.value) and "150" in str(info.value)


def test_empty_frame(frame):
    with pytest.raises(ValueError, match=pattern(_EMPTY_FRAME)):
        load(frame.iloc[:0])
    with pytest.raises(ValueError, match=pattern(_BAD_SEED)):
        load(frame, seed=-1)


# ---------------------------------------------------------------------------- CSV and registry


def test_load_csv_and_spec_round_trip(frame, tmp_path):
    path = tmp_path / "arrests.csv"
    frame.to_csv(path, index=False)
    data = load_csv(path, target="released", sensitive="colour", positive_label="Yes", seed=3)
    assert data.spec["spec"] == f"csv:{path.resolve()}"
    json.dumps(data.spec)
    again = load_dataset(**json.loads(json.dumps(data.spec)))
    for name in SPLITS:
        assert np.array_equal(again.splits[name].index, data.splits[name].index)
        assert np.array_equal(again.splits[name].X, data.splits[name].X)
    bare = load_dataset(str(path), target="released", sensitive="colour", positive_label="Yes")
    assert bare.num_groups == 2


def test_load_csv_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=pattern(_FILE_NOT_FOUND)) as info:
        load_csv(tmp_path / "absent.csv", target="y", sensitive="s")
    assert "absent.csv" in str(info.value)


def test_load_dataset_spec_errors():
    with pytest.raises(ValueError, match=pattern(_UNKNOWN_SCHEME)) as info:
        load_dataset("mnist:/x")
    assert "adult" in str(info.value) and "arrests" in str(info.value)
    with pytest.raises(ValueError, match=pattern(_NEEDS_PATH)):
        load_dataset("adult")
    with pytest.raises(ValueError, match=pattern(_TAKES_NO_PATH)):
        load_dataset("arrests:/somewhere")
    with pytest.raises(ValueError, match=pattern(_NO_SPEC)):
        load_dataset(None)
    with pytest.raises(ValueError, match=pattern(_DUPLICATE)):
        register_dataset("adult", load_adult, needs_path=True)
    assert {"adult", "arrests", "compas", "csv", "celeba", "images", "digits"} <= set(available_datasets())


def test_default_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRREPROGRAM_DATA_DIR", str(tmp_path / "elsewhere"))
    assert default_data_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("FAIRREPROGRAM_DATA_DIR")
    project = tmp_path / "proj"
    (project / "deep" / "er").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\n")
    monkeypatch.chdir(project / "deep" / "er")
    assert default_data_dir() == (tmp_path / "shared" / "data").resolve()


# ---------------------------------------------------------------------------- built-in data


def _adult_line(rng: np.random.Generator, *, rich: bool, test: bool) -> str:
    sex = rng.choice(["Male", "Female"])
    values = [
        str(rng.integers(18, 80)),
        rng.choice(["Private", "State-gov", "?"]),
        str(rng.integers(10000, 400000)),
        "Bachelors",
        "13",
        rng.choice(["Never-married", "Married-civ-spouse"]),
        rng.choice(["Adm-clerical", "Exec-managerial", "?"]),
        "Not-in-family",
        rng.choice(["White", "Black"]),
        sex,
        str(rng.integers(0, 3000)),
        "0",
        str(rng.integers(20, 60)),
        "United-States",
        (">50K" if rich else "<=50K") + ("." if test else ""),
    ]
    return ", ".join(values)


def write_adult(root, *, n_data: int = 60, n_test: int = 40):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    data_rich = [i % 3 == 0 for i in range(n_data)]
    test_rich = [i % 4 == 0 for i in range(n_test)]
    lines = [_adult_line(rng, rich=r, test=False) for r in data_rich]
    (root / "adult.data").write_text("\n".join(lines) + "\n\n")
    lines = [_adult_line(rng, rich=r, test=True) for r in test_rich]
    (root / "adult.test").write_text("|1x3 Cross validator\n" + "\n".join(lines) + "\n")
    return np.array(data_rich), np.array(test_rich)


def test_load_adult_raw_format(tmp_path):
    data_rich, test_rich = write_adult(tmp_path / "adult")
    data = load_adult(tmp_path / "adult", min_split_size=2)
    assert data.class_names == ["<=50K", ">50K"]
    assert data.group_names == ["Female", "Male"]
    assert len(data.test) == len(test_rich)
    assert np.array_equal(data.test.y, test_rich[data.test.index].astype(np.int64))
    for name in SPLITS[:3]:
        split = data.splits[name]
        assert np.array_equal(split.y, data_rich[split.index].astype(np.int64))
    assert sum(len(data.splits[n]) for n in SPLITS[:3]) == len(data_rich)
    assert not any(n.startswith(("fnlwgt", "education=")) for n in data.feature_names)
    assert "workclass=?" in data.feature_names and "education-num" in data.feature_names
    assert data.num_features == len(data.preprocessor.feature_names_)
    again = load_dataset(**json.loads(json.dumps(data.spec)))
    assert np.array_equal(again.tune.X, data.tune.X)
    race = load_adult(tmp_path / "adult", sensitive=["sex", "race"], min_split_size=2)
    assert race.num_groups == 4


def test_load_adult_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=pattern(_FILE_NOT_FOUND)):
        load_adult(tmp_path / "nowhere")
    write_adult(tmp_path / "adult")
    with pytest.raises(TypeError, match=pattern(_FIXED_OPTION)):
        load_adult(tmp_path / "adult", target="sex")
    with open(tmp_path / "adult" / "adult.data", "a") as handle:
        handle.write("1, 2, 3\n")
    with pytest.raises(ValueError, match=pattern(_ADULT_BAD_FORMAT)):
        load_adult(tmp_path / "adult")
    assert len(ADULT_COLUMNS) == 15


def write_compas(path, n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "sex": rng.choice(["Male", "Female"], size=n),
            "age": rng.integers(18, 70, size=n),
            "age_cat": rng.choice(["Less than 25", "25 - 45", "Greater than 45"], size=n),
            "race": rng.choice(["African-American", "Caucasian", "Hispanic"], size=n),
            "juv_fel_count": rng.integers(0, 2, size=n),
            "decile_score": rng.integers(1, 11, size=n),
            "juv_misd_count": rng.integers(0, 2, size=n),
            "juv_other_count": rng.integers(0, 2, size=n),
            "priors_count": rng.integers(0, 10, size=n),
            "days_b_screening_arrest": rng.choice([-40.0, -1.0, 0.0, 5.0, 31.0, np.nan], size=n),
            "c_charge_degree": rng.choice(["F", "M", "O"], size=n, p=[0.5, 0.4, 0.1]),
            "is_recid": rng.choice([-1, 0, 1], size=n, p=[0.1, 0.45, 0.45]),
            "score_text": rng.choice(["Low", "High", "N/A"], size=n, p=[0.5, 0.4, 0.1]),
            "two_year_recid": rng.integers(0, 2, size=n),
        }
    )
    frame.to_csv(path, index=False)
    return frame


def test_load_compas_filtering(tmp_path):
    raw = write_compas(tmp_path / "compas-scores-two-years.csv", n=600)
    keep = (
        raw["days_b_screening_arrest"].between(-30, 30)
        & (raw["is_recid"] != -1)
        & (raw["c_charge_degree"] != "O")
        & (raw["score_text"] != "N/A")
    )
    kept = raw[keep]
    two_races = kept[kept["race"].isin(["African-American", "Caucasian"])]
    data = load_compas(tmp_path, min_split_size=5)
    total = sum(len(data.splits[n]) for n in SPLITS)
    assert total == len(two_races)
    assert data.group_names == ["African-American", "Caucasian"]
    assert data.class_names == ["0", "1"]
    assert not any(n.startswith(("decile_score", "score_text")) for n in data.feature_names)
    everyone = load_compas(tmp_path / "compas-scores-two-years.csv", races=None, min_split_size=5)
    assert sum(len(everyone.splits[n]) for n in SPLITS) == len(kept)
    assert everyone.num_groups == 3
    by_sex = load_compas(tmp_path, sensitive="sex", min_split_size=5)
    assert by_sex.group_names == ["Female", "Male"]
    with pytest.raises(FileNotFoundError, match=pattern(_FILE_NOT_FOUND)):
        load_compas(tmp_path / "missing")


def test_load_arrests():
    data = load_arrests()
    assert data.num_groups == 2 and data.group_names == ["Black", "White"]
    assert sum(len(data.splits[n]) for n in SPLITS) == 5226
    assert data.class_names == ["No", "Yes"]
    assert data.spec["spec"] == "arrests"
    by_sex = load_dataset("arrests", sensitive="sex", include_sensitive=False)
    assert not any(n.startswith("sex=") for n in by_sex.feature_names)


def test_tabular_split_validation():
    with pytest.raises(ValueError, match=pattern(_SPLIT_LENGTHS)):
        TabularSplit(X=np.zeros((3, 2)), y=np.zeros(2), z=np.zeros(3), index=np.arange(3))
