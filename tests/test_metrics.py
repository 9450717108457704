"""Tests for fairreprogram.metrics, checked against fairlearn and scikit-learn."""

from __future__ import annotations

import contextlib
import json
import math
import re
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

from fairreprogram.metrics import (
    METRIC_KEYS,
    FairnessEvaluation,
    compare_fairness,
    demographic_parity_gap,
    equalized_odds_gap,
    evaluate_fairness,
    worst_group_accuracy,
)
from fairreprogram.metrics._evaluation import (
    _BAD_CONFIDENCE_LEVEL,
    _BAD_CONVENTION,
    _BAD_N_BOOTSTRAP,
)
from fairreprogram.metrics._inputs import (
    _BAD_SCORE_SHAPE,
    _EMPTY_INPUT,
    _LENGTH_MISMATCH,
    _MISSING_LABEL,
    _MIXED_LABEL_TYPES,
    _POS_LABEL_MULTICLASS,
    _POS_LABEL_NOT_FOUND,
)
from fairreprogram.utils import FairnessWarning


@contextlib.contextmanager
def warns_with(pattern: str):
    """Expect FairnessWarnings, one matching ``pattern``, and capture all of them."""
    with pytest.warns(FairnessWarning) as record:
        yield record
    messages = [str(w.message) for w in record]
    assert any(re.search(pattern, message) for message in messages), messages


def prefix(template: str) -> str:
    """Regex for the fixed text of a message template, up to its first placeholder."""
    return re.escape(template.split("{")[0])


def random_binary(seed: int, n_groups: int, n: int = 600):
    rng = np.random.default_rng(seed)
    groups = np.array([f"g{i}" for i in range(n_groups)])[rng.integers(0, n_groups, n)]
    y_true = rng.integers(0, 2, n)
    # predictions correlated with the label and shifted per group, so gaps are non-trivial
    shift = {name: 0.15 * i for i, name in enumerate(sorted(set(groups)))}
    logits = 1.2 * (y_true - 0.5) + np.array([shift[g] for g in groups]) + rng.normal(0, 1, n)
    y_score = 1.0 / (1.0 + np.exp(-logits))
    y_pred = (y_score > 0.5).astype(int)
    return y_true, y_pred, y_score, groups


def paper_example():
    """Three groups with hand-checked rates (see test_paper_convention_by_hand)."""
    cells = {  # group: (y_true, y_pred)
        "A": ([1, 1, 0, 0], [1, 0, 0, 0]),
        "B": ([1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 0, 0]),
        "C": ([1, 0], [1, 1]),
    }
    y_true = np.concatenate([t for t, _ in cells.values()])
    y_pred = np.concatenate([p for _, p in cells.values()])
    groups = np.concatenate([[g] * len(t) for g, (t, _) in cells.items()])
    return y_true, y_pred, groups


# --- fairlearn / scikit-learn agreement on binary data -----------------------------------


@pytest.mark.parametrize("n_groups", [2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_gaps_match_fairlearn(n_groups, seed):
    y_true, y_pred, y_score, groups = random_binary(seed, n_groups)
    result = evaluate_fairness(y_true=y_true, y_pred=y_pred, sensitive_features=groups, y_score=y_score)
    overall = result.overall
    assert overall["dp_gap"] == pytest.approx(
        demographic_parity_difference(y_true, y_pred, sensitive_features=groups), abs=1e-12
    )
    assert overall["eo_gap"] == pytest.approx(
        equalized_odds_difference(y_true, y_pred, sensitive_features=groups), abs=1e-12
    )
    frame = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "accuracy": accuracy_score,
        },
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=groups,
    )
    expected = frame.by_group.reindex(result.by_group.index)
    for column in ["selection_rate", "tpr", "fpr", "accuracy"]:
        np.testing.assert_allclose(result.by_group[column], expected[column], atol=1e-12)
    differences = frame.difference()
    assert overall["tpr_gap"] == pytest.approx(differences["tpr"], abs=1e-12)
    assert overall["fpr_gap"] == pytest.approx(differences["fpr"], abs=1e-12)
    np.testing.assert_allclose(result.by_group["fnr"], 1.0 - expected["tpr"], atol=1e-12)
    assert result.by_group["count"].tolist() == [int((groups == g).sum()) for g in result.by_group.index]
    assert overall["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    assert overall["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred), abs=1e-12)
    assert overall["auc"] == pytest.approx(roc_auc_score(y_true, y_score), abs=1e-12)
    assert overall["selection_rate"] == pytest.approx(y_pred.mean(), abs=1e-12)
    assert overall["n"] == len(y_true)
    if n_groups == 2:  # the overall rate lies between the two group rates
        assert overall["dp_gap_paper"] == pytest.approx(overall["dp_gap"], abs=1e-12)
    assert result.warnings == []


def test_auc_with_ties_and_two_column_scores():
    rng = np.random.default_rng(5)
    y_true = rng.integers(0, 2, 300)
    score = np.round(rng.random(300), 1)  # many ties
    proba = np.column_stack([1 - score, score])
    groups = rng.choice(["a", "b"], 300)
    for y_score in (score, proba):
        result = evaluate_fairness(y_true=y_true, y_pred=y_true, sensitive_features=groups, y_score=y_score)
        assert result.overall["auc"] == pytest.approx(roc_auc_score(y_true, score), abs=1e-12)
    # with pos_label=0 the (n, 2) array contributes its column for class 0
    flipped = evaluate_fairness(
        y_true=y_true, y_pred=y_true, sensitive_features=groups, y_score=proba, pos_label=0
    )
    assert flipped.overall["auc"] == pytest.approx(roc_auc_score(y_true == 0, proba[:, 0]), abs=1e-12)


def test_worst_group_accuracy_is_min_over_group_label_cells():
    y_true, y_pred, _, groups = random_binary(3, 3)
    result = evaluate_fairness(y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    cells = [np.mean(y_pred[(groups == g) & (y_true == y)] == y) for g in np.unique(groups) for y in (0, 1)]
    assert result.overall["worst_group_accuracy"] == pytest.approx(min(cells), abs=1e-12)
    assert worst_group_accuracy(y_true=y_true, y_pred=y_pred, sensitive_features=groups) == pytest.approx(
        min(cells), abs=1e-12
    )
    np.testing.assert_allclose(result.by_group_label["accuracy"], cells, atol=1e-12)
    assert result.by_group_label.index.names == ["group", "label"]
    cell = result.by_group_label.loc[("g1", 0)]
    mask = (groups == "g1") & (y_true == 0)
    assert cell["count"] == mask.sum()
    assert cell["selection_rate"] == pytest.approx(y_pred[mask].mean(), abs=1e-12)


# --- the paper's convention ---------------------------------------------------------------


def test_paper_convention_by_hand():
    y_true, y_pred, groups = paper_example()
    # selection rates: A 1/4, B 4/6, C 2/2; overall 7/12
    # FPR: A 0/2, B 1/3, C 1/1; overall 2/6.  FNR: A 1/2, B 0/3, C 0/1; overall 1/6
    sel, sel_all = [Fraction(1, 4), Fraction(2, 3), Fraction(1)], Fraction(7, 12)
    fpr, fpr_all = [Fraction(0), Fraction(1, 3), Fraction(1)], Fraction(1, 3)
    fnr, fnr_all = [Fraction(1, 2), Fraction(0), Fraction(0)], Fraction(1, 6)
    dp_paper = sum(abs(s - sel_all) for s in sel)
    eo_paper = (sum(abs(f - fpr_all) for f in fpr) + sum(abs(f - fnr_all) for f in fnr)) / 2
    assert dp_paper == Fraction(5, 6)
    assert eo_paper == Fraction(5, 6)

    result = evaluate_fairness(y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    assert result.overall["dp_gap_paper"] == pytest.approx(float(dp_paper), abs=1e-12)
    assert result.overall["eo_gap_paper"] == pytest.approx(float(eo_paper), abs=1e-12)
    # the fairlearn convention on the same data: max - min
    assert result.overall["dp_gap"] == pytest.approx(0.75, abs=1e-12)
    assert result.overall["tpr_gap"] == pytest.approx(0.5, abs=1e-12)
    assert result.overall["fpr_gap"] == pytest.approx(1.0, abs=1e-12)
    assert result.overall["eo_gap"] == pytest.approx(1.0, abs=1e-12)
    assert result.overall["worst_group_accuracy"] == pytest.approx(0.0, abs=1e-12)

    kwargs = {"y_true": y_true, "y_pred": y_pred, "sensitive_features": groups}
    assert demographic_parity_gap(**kwargs, convention="paper") == pytest.approx(5 / 6)
    assert demographic_parity_gap(**kwargs) == pytest.approx(0.75)
    assert equalized_odds_gap(**kwargs, convention="paper") == pytest.approx(5 / 6)
    assert equalized_odds_gap(**kwargs, convention="fairlearn") == pytest.approx(1.0)


# --- multi-class, intersectional groups, string labels ------------------------------------


def test_multiclass_one_vs_rest_averages_fairlearn_per_class():
    rng = np.random.default_rng(7)
    n, n_classes = 900, 3
    y_true = rng.integers(0, n_classes, n)
    groups = rng.choice(["a", "b", "c"], n)
    logits = rng.normal(0, 1, (n, n_classes))
    logits[np.arange(n), y_true] += 1.0
    logits[groups == "b", 0] += 0.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y_pred = proba.argmax(axis=1)
    result = evaluate_fairness(y_true=y_true, y_pred=y_pred, sensitive_features=groups, y_score=proba)

    dp, eo, tpr_gap, fpr_gap, tprs = [], [], [], [], []
    for c in range(n_classes):
        t, p = (y_true == c).astype(int), (y_pred == c).astype(int)
        dp.append(demographic_parity_difference(t, p, sensitive_features=groups))
        eo.append(equalized_odds_difference(t, p, sensitive_features=groups))
        frame = MetricFrame(
            metrics={"tpr": true_positive_rate, "fpr": false_positive_rate},
            y_true=t,
            y_pred=p,
            sensitive_features=groups,
        )
        tpr_gap.append(frame.difference()["tpr"])
        fpr_gap.append(frame.difference()["fpr"])
        tprs.append(frame.by_group["tpr"])
        per_class = result.by_group_class.xs(c, level="class")
        np.testing.assert_allclose(per_class["tpr"], frame.by_group["tpr"], atol=1e-12)
        np.testing.assert_allclose(per_class["fpr"], frame.by_group["fpr"], atol=1e-12)
    overall = result.overall
    assert overall["dp_gap"] == pytest.approx(np.mean(dp), abs=1e-12)
    assert overall["eo_gap"] == pytest.approx(np.mean(eo), abs=1e-12)
    assert overall["tpr_gap"] == pytest.approx(np.mean(tpr_gap), abs=1e-12)
    assert overall["fpr_gap"] == pytest.approx(np.mean(fpr_gap), abs=1e-12)
    np.testing.assert_allclose(result.by_group["tpr"], np.mean(tprs, axis=0), atol=1e-12)
    # the one-vs-rest average of selection rates is 1/C by construction
    np.testing.assert_allclose(result.by_group["selection_rate"], 1 / n_classes)
    assert overall["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred), abs=1e-12)
    assert overall["auc"] == pytest.approx(
        roc_auc_score(y_true, proba, multi_class="ovr", average="macro"), abs=1e-12
    )
    assert result.pos_label is None
    assert result.classes == (0, 1, 2)


def test_intersectional_groups_from_two_columns():
    rng = np.random.default_rng(11)
    n = 800
    sex = rng.choice(["Female", "Male"], n)
    race = rng.choice(["Black", "White", "Asian"], n)
    y_true = rng.integers(0, 2, n)
    y_pred = np.where(rng.random(n) < 0.8, y_true, 1 - y_true)
    y_pred[(sex == "Female") & (race == "Black")] = 1
    frame = pd.DataFrame({"sex": sex, "race": race})
    by_frame = evaluate_fairness(y_true=y_true, y_pred=y_pred, sensitive_features=frame)
    expected_names = sorted({f"{s}|{r}" for s, r in zip(sex, race, strict=True)})
    assert list(by_frame.by_group.index) == expected_names
    assert "Female|Black" in by_frame.by_group.index
    assert by_frame.by_group.loc["Female|Black", "selection_rate"] == 1.0
    assert by_frame.overall["dp_gap"] == pytest.approx(
        demographic_parity_difference(y_true, y_pred, sensitive_features=frame), abs=1e-12
    )
    assert by_frame.overall["eo_gap"] == pytest.approx(
        equalized_odds_difference(y_true, y_pred, sensitive_features=frame), abs=1e-12
    )
    for other in ([sex, race], np.column_stack([sex, race]), {"sex": sex, "race": race}):
        again = evaluate_fairness(y_true=y_true, y_pred=y_pred, sensitive_features=other)
        pd.testing.assert_frame_equal(again.by_group, by_frame.by_group)


def test_string_labels_and_pos_label():
    y_true, y_pred, _, groups = random_binary(4, 3)
    words = np.array(["no", "yes"])
    numeric = evaluate_fairness(y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    text = evaluate_fairness(y_true=words[y_true], y_pred=list(words[y_pred]), sensitive_features=groups)
    assert text.pos_label == "yes"
    assert text.classes == ("no", "yes")
    for key in METRIC_KEYS:
        if key != "auc":
            assert text.overall[key] == pytest.approx(numeric.overall[key], abs=1e-12)
    assert set(text.by_group_label.index.get_level_values("label")) == {"no", "yes"}
    flipped = evaluate_fairness(
        y_true=words[y_true], y_pred=words[y_pred], sensitive_features=groups, pos_label="no"
    )
    assert flipped.pos_label == "no"
    assert flipped.overall["selection_rate"] == pytest.approx(np.mean(y_pred == 0))
    # the selection-rate gap of the complement is the same gap
    assert flipped.overall["dp_gap"] == pytest.approx(numeric.overall["dp_gap"], abs=1e-12)
    np.testing.assert_allclose(flipped.by_group["tpr"], 1 - numeric.by_group["fpr"], atol=1e-12)


# --- undefined cases ----------------------------------------------------------------------


def test_requested_empty_group_gets_nan_and_warning():
    y_true, y_pred, _, groups = random_binary(0, 2)
    plain = evaluate_fairness(y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    with warns_with("group 'g9' has no rows"):
        result = evaluate_fairness(
            y_true=y_true, y_pred=y_pred, sensitive_features=groups, groups=["g0", "g9"]
        )
    assert list(result.by_group.index) == ["g0", "g1", "g9"]
    row = result.by_group.loc["g9"]
    assert row["count"] == 0
    assert row[["selection_rate", "tpr", "fpr", "fnr", "accuracy"]].isna().all()
    for key in METRIC_KEYS:
        assert result.overall[key] == pytest.approx(plain.overall[key], nan_ok=True)
    assert any("g9" in message for message in result.warnings)


def test_group_with_one_class_gets_nan_rate_and_warning():
    y_true, y_pred, _, groups = random_binary(1, 3)
    y_true = y_true.copy()
    y_true[groups == "g2"] = 1  # g2 has no negatives: its FPR is undefined
    with warns_with(r"group 'g2' has no negative rows.*FPR"):
        result = evaluate_fairness(y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    assert math.isnan(result.by_group.loc["g2", "fpr"])
    assert not math.isnan(result.by_group.loc["g2", "tpr"])
    fpr = result.by_group["fpr"].drop("g2")
    assert result.overall["fpr_gap"] == pytest.approx(fpr.max() - fpr.min(), abs=1e-12)
    tpr_gap = result.by_group["tpr"].max() - result.by_group["tpr"].min()
    assert result.overall["eo_gap"] == pytest.approx(max(tpr_gap, fpr.max() - fpr.min()))
    # the empty (g2, 0) cell is skipped in worst-group accuracy, with its own warning
    assert any("cell (group 'g2', label 0) is skipped" in m for m in result.warnings)
    assert result.by_group_label.loc[("g2", 0), "count"] == 0
    assert not math.isnan(result.overall["worst_group_accuracy"])
    assert not math.isnan(result.overall["eo_gap_paper"])

    y_true[groups == "g2"] = 0  # now no positives: TPR and FNR undefined
    with warns_with(r"group 'g2' has no positive rows.*TPR and FNR"):
        result = evaluate_fairness(y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    assert result.by_group.loc["g2", ["tpr", "fnr"]].isna().all()


def test_single_class_in_y_true_makes_auc_nan():
    y_true = np.ones(50, dtype=int)
    y_pred = np.r_[np.ones(40, dtype=int), np.zeros(10, dtype=int)]
    groups = np.array(["a", "b"] * 25)
    with warns_with("the AUC is undefined"):
        result = evaluate_fairness(
            y_true=y_true, y_pred=y_pred, sensitive_features=groups, y_score=np.linspace(0, 1, 50)
        )
    assert math.isnan(result.overall["auc"])
    assert math.isnan(result.overall["fpr_gap"])
    assert not math.isnan(result.overall["eo_gap"])  # falls back to the defined TPR gap
    assert result.overall["eo_gap"] == pytest.approx(result.overall["tpr_gap"])


def test_single_label_everywhere_does_not_crash():
    with warns_with("single label"):
        result = evaluate_fairness(y_true=[0, 0, 0], y_pred=[0, 0, 0], sensitive_features=list("aab"))
    assert result.overall["accuracy"] == 1.0
    with pytest.warns(FairnessWarning):
        named = evaluate_fairness(
            y_true=[0, 0, 0], y_pred=[0, 0, 0], sensitive_features=list("aab"), pos_label=1
        )
    assert named.classes == (0, 1)
    assert named.overall["selection_rate"] == 0.0
    assert named.overall["dp_gap"] == 0.0
    assert math.isnan(named.overall["tpr_gap"])


def test_single_group_warns_and_gaps_are_zero():
    y_true, y_pred, _, _ = random_binary(2, 2)
    with warns_with("only one group"):
        result = evaluate_fairness(y_true=y_true, y_pred=y_pred, sensitive_features=["all"] * len(y_true))
    for key in ("dp_gap", "eo_gap", "tpr_gap", "fpr_gap", "dp_gap_paper", "eo_gap_paper"):
        assert result.overall[key] == 0.0


def test_multiclass_auc_skips_class_absent_from_y_true():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 2, 200)
    y_pred = rng.integers(0, 3, 200)  # class 2 is only ever predicted
    proba = rng.dirichlet(np.ones(3), 200)
    with warns_with("class 2 has 0 of 200 rows"):
        result = evaluate_fairness(
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=rng.choice(["a", "b"], 200),
            y_score=proba,
        )
    expected = np.mean([roc_auc_score(y_true == c, proba[:, c]) for c in (0, 1)])
    assert result.overall["auc"] == pytest.approx(expected, abs=1e-12)


def test_integer_labels_index_wider_scores():
    rng = np.random.default_rng(9)
    n = 400
    proba = rng.dirichlet(np.ones(4), n)  # a 4-class model; class 2 never occurs here
    y_true = rng.choice([0, 1, 3], n)
    y_pred = rng.choice([0, 1, 3], n)
    groups = rng.choice(["a", "b"], n)
    result = evaluate_fairness(y_true=y_true, y_pred=y_pred, sensitive_features=groups, y_score=proba)
    assert result.classes == (0, 1, 3)
    expected = np.mean([roc_auc_score(y_true == c, proba[:, c]) for c in (0, 1, 3)])
    assert result.overall["auc"] == pytest.approx(expected, abs=1e-12)
    binary = evaluate_fairness(
        y_true=y_true == 3, y_pred=y_pred == 3, sensitive_features=groups, y_score=proba[:, [0, 3]]
    )
    assert binary.overall["auc"] == pytest.approx(roc_auc_score(y_true == 3, proba[:, 3]), abs=1e-12)
    words = np.array(["w", "x", "y", "z"])  # string labels cannot index score columns
    with pytest.raises(ValueError, match=prefix(_BAD_SCORE_SHAPE)):
        evaluate_fairness(
            y_true=words[y_true], y_pred=words[y_pred], sensitive_features=groups, y_score=proba
        )


# --- bootstrap ------------------------------------------------------------------------------


def test_bootstrap_intervals():
    y_true, y_pred, y_score, groups = random_binary(0, 3, n=1500)
    kwargs = {
        "y_true": y_true,
        "y_pred": y_pred,
        "sensitive_features": groups,
        "y_score": y_score,
    }
    result = evaluate_fairness(**kwargs, n_bootstrap=200, random_state=0)
    assert set(result.confidence_intervals) == set(METRIC_KEYS) - {"n"}
    for key, (low, high) in result.confidence_intervals.items():
        assert low <= result.overall[key] <= high, key
        assert low < high, key
    again = evaluate_fairness(**kwargs, n_bootstrap=200, random_state=0)
    assert again.confidence_intervals == result.confidence_intervals
    other = evaluate_fairness(**kwargs, n_bootstrap=200, random_state=1)
    assert other.confidence_intervals != result.confidence_intervals
    narrow = evaluate_fairness(**kwargs, n_bootstrap=200, random_state=0, confidence_level=0.5)
    low, high = narrow.confidence_intervals["accuracy"]
    wide_low, wide_high = result.confidence_intervals["accuracy"]
    assert wide_low <= low <= high <= wide_high
    assert result.overall == evaluate_fairness(**kwargs).overall
    assert evaluate_fairness(**kwargs).confidence_intervals == {}


def _flip_some(y_pred, share, seed):
    rng = np.random.default_rng(seed)
    flipped = y_pred.copy()
    rows = rng.random(len(y_pred)) < share
    flipped[rows] = 1 - flipped[rows]
    return flipped


def test_comparison_points_are_the_two_evaluations_and_their_difference():
    y_true, before, score, groups = random_binary(4, 2, n=800)
    after = _flip_some(before, 0.1, seed=1)
    result = compare_fairness(
        y_true=y_true,
        y_pred_before=before,
        y_pred_after=after,
        sensitive_features=groups,
        y_score_before=score,
        n_bootstrap=0,
    )
    assert (
        result.before
        == evaluate_fairness(y_true=y_true, y_pred=before, sensitive_features=groups, y_score=score).overall
    )
    assert result.after == pytest.approx(
        evaluate_fairness(y_true=y_true, y_pred=after, sensitive_features=groups).overall, nan_ok=True
    )
    for key, change in result.difference.items():
        assert change == pytest.approx(result.after[key] - result.before[key], nan_ok=True), key
    assert result.confidence_intervals == {}
    with pytest.raises(KeyError, match="n_bootstrap > 0"):
        result.excludes_zero("dp_gap")
    assert result.relative_change("accuracy") == pytest.approx(
        result.difference["accuracy"] / result.before["accuracy"]
    )
    assert json.loads(json.dumps(result.to_dict(), allow_nan=True))["n_bootstrap"] == 0


def test_paired_intervals_are_those_of_the_change():
    y_true, before, _, groups = random_binary(5, 2, n=2000)

    def compare(after, n_bootstrap):
        return compare_fairness(
            y_true=y_true,
            y_pred_before=before,
            y_pred_after=after,
            sensitive_features=groups,
            n_bootstrap=n_bootstrap,
            random_state=0,
        )

    same = compare(before, 100)
    assert all(low == high == 0.0 for key, (low, high) in same.confidence_intervals.items() if key != "auc")
    assert not same.excludes_zero("accuracy")
    # Fix 5% of the wrong predictions: a small but sure gain, which two separate intervals
    # (each about 4 points wide) cannot show and the paired one does.
    after = before.copy()
    wrong = np.flatnonzero(before != y_true)
    after[wrong[: len(wrong) // 20]] = y_true[wrong[: len(wrong) // 20]]
    paired = compare(after, 300)
    low, high = paired.confidence_intervals["accuracy"]
    assert 0 < low <= paired.difference["accuracy"] <= high and paired.excludes_zero("accuracy")
    single = [
        evaluate_fairness(
            y_true=y_true, y_pred=p, sensitive_features=groups, n_bootstrap=300, random_state=0
        ).confidence_intervals["accuracy"]
        for p in (before, after)
    ]
    assert single[0][1] > single[1][0]  # the separate intervals overlap
    assert high - low < 0.5 * (single[0][1] - single[0][0])  # about a quarter here
    assert compare(after, 300).confidence_intervals == paired.confidence_intervals


def test_comparison_docstring_example_and_bad_inputs():
    result = compare_fairness(
        y_true=[1, 1, 0, 0, 1, 0],
        y_pred_before=[1, 1, 0, 1, 0, 0],
        y_pred_after=[1, 0, 0, 0, 1, 0],
        sensitive_features=list("aabbab"),
        n_bootstrap=0,
    )
    assert round(result.difference["accuracy"], 4) == 0.1667
    kwargs = {"y_true": [0, 1, 0, 1], "y_pred_before": [0, 1, 1, 1], "sensitive_features": list("abab")}
    with pytest.raises(ValueError, match=r"y_pred has 3 rows.*\(checking y_pred_after and y_score_after\)"):
        compare_fairness(**kwargs, y_pred_after=[0, 1, 1])
    with pytest.raises(ValueError, match=r"different class sets \(\[0, 1\] and \[0, 1, 2\]\)"):
        compare_fairness(**kwargs, y_pred_after=[0, 2, 1, 1])
    with pytest.raises(ValueError, match="n_bootstrap=-1 is not valid"):
        compare_fairness(**kwargs, y_pred_after=[0, 1, 0, 1], n_bootstrap=-1)


def test_bootstrap_without_scores_gives_nan_auc_interval():
    y_true, y_pred, _, groups = random_binary(1, 2, n=300)
    result = evaluate_fairness(
        y_true=y_true, y_pred=y_pred, sensitive_features=groups, n_bootstrap=20, random_state=3
    )
    assert all(math.isnan(v) for v in result.confidence_intervals["auc"])
    assert result.warnings == []


# --- result object --------------------------------------------------------------------------


def test_result_object_serialises():
    y_true, y_pred, y_score, groups = random_binary(2, 3)
    with pytest.warns(FairnessWarning):
        result = evaluate_fairness(
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=groups,
            y_score=y_score,
            groups=["g0", "g1", "g2", "empty"],
            n_bootstrap=10,
            random_state=0,
        )
    assert isinstance(result, FairnessEvaluation)
    assert tuple(result.overall) == METRIC_KEYS
    assert list(result.by_group.columns) == [
        "count",
        "selection_rate",
        "tpr",
        "fpr",
        "fnr",
        "accuracy",
    ]
    assert list(result.by_group_label.columns) == ["count", "accuracy", "selection_rate"]
    summary = result.summary()
    summary["accuracy"] = -1.0
    assert result.overall["accuracy"] != -1.0
    text = repr(result)
    assert text.startswith("FairnessEvaluation(n=600, groups=4, classes=2")
    assert "dp_gap=" in text

    data = result.to_dict()
    assert set(data) >= {"overall", "by_group", "by_group_label", "confidence_intervals"}
    restored = json.loads(json.dumps(data))
    assert restored["overall"]["n"] == 600
    empty_row = next(row for row in data["by_group"] if row["group"] == "empty")
    assert empty_row["count"] == 0 and math.isnan(empty_row["tpr"])
    assert isinstance(empty_row["tpr"], float)
    assert {"group", "label", "count", "accuracy"} <= set(data["by_group_label"][0])
    assert isinstance(data["by_group_label"][0]["label"], int)
    assert all(isinstance(v, list) and len(v) == 2 for v in data["confidence_intervals"].values())
    assert data["warnings"] == result.warnings


def test_large_input():
    rng = np.random.default_rng(0)
    n = 200_000
    y_true = rng.integers(0, 2, n)
    result = evaluate_fairness(
        y_true=y_true,
        y_pred=rng.integers(0, 2, n),
        sensitive_features=rng.integers(0, 5, n),
        y_score=rng.random(n),
    )
    assert result.overall["n"] == n
    assert list(result.by_group.index) == ["0", "1", "2", "3", "4"]


# --- input errors ---------------------------------------------------------------------------


def _inputs(n=10):
    return {
        "y_true": (np.arange(n) // 2) % 2,
        "y_pred": np.zeros(n, dtype=int),
        "sensitive_features": np.array(["a", "b"] * (n // 2)),
    }


@pytest.mark.parametrize("name", ["y_pred", "sensitive_features", "y_score"])
def test_length_mismatch(name):
    kwargs = _inputs()
    kwargs[name] = np.ones(7)
    message = _LENGTH_MISMATCH.format(name=name, got=7, expected=10)
    with pytest.raises(ValueError, match=re.escape(message)):
        evaluate_fairness(**kwargs)


def test_empty_input():
    with pytest.raises(ValueError, match=re.escape(_EMPTY_INPUT.format(name="y_true"))):
        evaluate_fairness(y_true=[], y_pred=[], sensitive_features=[])


@pytest.mark.parametrize("level", [0, 1, 1.5, -0.1, float("nan"), True, "0.9"])
def test_bad_confidence_level(level):
    with pytest.raises(ValueError, match=prefix(_BAD_CONFIDENCE_LEVEL)):
        evaluate_fairness(**_inputs(), confidence_level=level)


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_bad_n_bootstrap(value):
    with pytest.raises(ValueError, match=prefix(_BAD_N_BOOTSTRAP)):
        evaluate_fairness(**_inputs(), n_bootstrap=value)


def test_bad_convention():
    with pytest.raises(ValueError, match=prefix(_BAD_CONVENTION)):
        demographic_parity_gap(**_inputs(), convention="average")
    with pytest.raises(ValueError, match=prefix(_BAD_CONVENTION)):
        equalized_odds_gap(**_inputs(), convention="average")


def test_bad_pos_label():
    with pytest.raises(ValueError, match=prefix(_POS_LABEL_NOT_FOUND)):
        evaluate_fairness(**_inputs(), pos_label=5)
    multi = _inputs()
    multi["y_true"] = np.arange(10) % 3
    with pytest.raises(ValueError, match=prefix(_POS_LABEL_MULTICLASS)):
        evaluate_fairness(**multi, pos_label=1)


def test_bad_score_shape():
    for y_score in (np.ones((10, 3, 1)), np.ones((10, 3))):
        kwargs = _inputs()
        kwargs["y_true"] = kwargs["y_pred"] = kwargs["y_true"] + 5  # 5, 6 cannot index 3 columns
        with pytest.raises(ValueError, match=prefix(_BAD_SCORE_SHAPE)):
            evaluate_fairness(**kwargs, y_score=y_score)
    multi = _inputs()
    multi["y_true"] = np.arange(10) % 3
    with pytest.raises(ValueError, match=prefix(_BAD_SCORE_SHAPE)):
        evaluate_fairness(**multi, y_score=np.ones(10))


def test_bad_labels():
    kwargs = _inputs()
    kwargs["y_pred"] = np.array(["a"] * 10)
    with pytest.raises(TypeError, match=prefix(_MIXED_LABEL_TYPES)):
        evaluate_fairness(**kwargs)
    kwargs = _inputs()
    kwargs["y_true"] = np.array([0, 1, None, 1, 0, 1, 0, 1, 0, 1], dtype=object)
    message = _MISSING_LABEL.format(name="y_true", count=1, index=2)
    with pytest.raises(ValueError, match=re.escape(message)):
        evaluate_fairness(**kwargs)
