import base64
import html
import io
import json
import math
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

import fairreprogram
from fairreprogram.engine import Criterion
from fairreprogram.experiments import (
    REPORT_HTML,
    REPORT_MARKDOWN,
    SweepConfig,
    build_task,
    collect_runs,
    efficiency_families,
    plot_efficiency,
    plot_group_rates,
    plot_tradeoff,
    plot_transfer,
    plot_trigger,
    run_sweep,
    summarize,
    write_report,
)
from fairreprogram.metrics import TABLE_KEYS
from fairreprogram.triggers import MaskOffsetTrigger, Trigger
from fairreprogram.triggers._base import PLOT_PARAMETER_LIMIT

SWEEP = {
    "name": "report-test",
    "data": {"spec": "arrests", "seed": 0},
    "base": {"hidden_sizes": [8], "train": {"epochs": 4, "class_weight": "balanced"}},
    "train": {"epochs": 6, "lr": 0.02, "class_weight": "balanced", "max_accuracy_drop": 0.05},
    "methods": {"advpost": {"lr": 0.001}},
    "seeds": [0, 1],
    "transfer": True,
    "grid": [
        {"method": "mask_offset", "criterion": ["dp", "eo"], "lam": [1.0, 3.0]},
        {"method": "advpost", "criterion": "dp", "lam": 1.0},
        {"method": "mask_offset", "criterion": "eo", "lam": 1.0, "tune_fraction": [0.3]},
        {"method": "threshold", "criterion": "eo"},
        {"method": "erm"},
    ],
}
METHODS = ("mask_offset", "advpost", "threshold", "erm", "base")
IMAGE = re.compile(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]*)">')
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report-sweep")
    run_sweep(SweepConfig.from_dict(SWEEP), out=out, workers=1, threads_per_worker=1, progress=False)
    return out


def _images(text):
    found = IMAGE.findall(text)
    for alt, data in found:
        assert alt.strip()
        assert base64.b64decode(data, validate=True).startswith(PNG_SIGNATURE)
    return [alt for alt, _ in found]


def test_report_holds_tables_plots_and_how_to_reproduce(sweep_dir, tmp_path):
    html_path, md_path = write_report(sweep_dir, out=tmp_path / "rep")
    assert (html_path, md_path) == (tmp_path / "rep" / REPORT_HTML, tmp_path / "rep" / REPORT_MARKDOWN)
    page, md = html_path.read_text(encoding="utf-8"), md_path.read_text(encoding="utf-8")
    alts = _images(page)
    expected = (
        "negative DP and EO gap",
        "share of tuning data",
        "bias reduction kept",
        "Per-group selection rate",
        "Learned mask_offset trigger",
    )
    assert len(alts) == len(expected)
    for alt, part in zip(alts, expected, strict=True):
        assert part in alt
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "report-test" in page and "report-test" in md
    for method in METHODS:
        assert f"<td>{method}</td>" in page and f"| {method} |" in md
    assert "uses Z at inference" in page and "uses Z at inference" in md
    assert "hypervolume reference" in page and "Pareto front points" in md
    assert f"fairreprogram {fairreprogram.__version__}" in page
    assert (
        html.escape(f"fairreprogram report {sweep_dir}") in page and f"fairreprogram report {sweep_dir}" in md
    )
    assert "fairreprogram sweep" in page and html.escape('"transfer": true') in page
    for reason in set(collect_runs(sweep_dir)["degenerate"]) - {""}:
        assert html.escape(reason) in page and reason in md


def test_report_says_when_the_accuracy_floor_admits_a_constant_classifier(sweep_dir, tmp_path):
    labels = build_task(SWEEP["data"]).dataset("test").tensors[1].numpy()
    majority = np.bincount(labels).max() / len(labels)
    runs = collect_runs(sweep_dir)
    assert runs["majority_accuracy"].to_numpy() == pytest.approx(np.full(len(runs), majority))
    summary = summarize(runs)
    assert summary["base"]["majority_accuracy"] == pytest.approx(majority)
    # The tiny base models of this sweep score no better than the constant classifier.
    assert majority >= summary["eo"]["matched_accuracy"]
    warning = "Predicting the most frequent class for every test row scores accuracy"
    assert warning in write_report(sweep_dir, out=tmp_path / "a")[1].read_text(encoding="utf-8")
    copy = tmp_path / "sweep"
    shutil.copytree(sweep_dir, copy)
    for metrics_path in (copy / "bases").glob("*/metrics.json"):
        metrics = json.loads(metrics_path.read_text())
        metrics["test"]["overall"]["accuracy"] = 0.99  # a base model the constant cannot match
        metrics_path.write_text(json.dumps(metrics))
    assert summarize(collect_runs(copy))["eo"]["matched_accuracy"] == pytest.approx(0.98)
    assert warning not in write_report(copy)[1].read_text(encoding="utf-8")


def test_report_flags_a_degenerate_run(sweep_dir, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(sweep_dir, copy)
    fake = copy / "runs" / "mask_offset-dp-lam3-s0-collapsed"
    shutil.copytree(copy / "runs" / "mask_offset-dp-lam3-s0", fake)
    metrics = json.loads((fake / "metrics.json").read_text())
    metrics["test"]["by_group"][0]["selection_rate"] = 1.0
    group = metrics["test"]["by_group"][0]["group"]
    (fake / "metrics.json").write_text(json.dumps(metrics))
    html_path, md_path = write_report(copy)
    page, md = html_path.read_text(encoding="utf-8"), md_path.read_text(encoding="utf-8")
    reason = f"predicts one class for all of group {group!r}"
    assert html.escape(f"⚠ degenerate: {reason}") in page and '<tr class="degenerate">' in page
    assert "mask_offset-dp-lam3-s0-collapsed" in md and reason in md
    assert html_path.parent == copy


def test_report_shows_a_spread_only_over_several_seeds(sweep_dir, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(sweep_dir, copy)
    shutil.rmtree(copy / "runs" / "advpost-dp-lam1-s1")  # advpost is left with one seed
    md = write_report(copy)[1].read_text(encoding="utf-8")
    results = md[md.index("## Results per method") : md.index("\n## ", md.index("## Results per method") + 1)]
    rows = {line.split(" | ")[0].lstrip("| "): line for line in results.splitlines() if line.startswith("| ")}
    assert "±" not in rows["advpost"] and "| 1 |" in rows["advpost"]
    assert "±" in rows["mask_offset"] and "| 2 |" in rows["mask_offset"]


def test_report_flags_untuned_runs_and_shows_words_and_efficiency(sweep_dir, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(sweep_dir, copy)
    before = collect_runs(copy).set_index("run_id")
    assert not before[before["method"].isin(["base", "erm", "threshold"])]["untuned"].any()
    assert (before["untuned"] == (before["best_epoch"] == 0) & ~before["method"].isin(["base", "erm"])).all()
    tuned = before[(before["method"] == "mask_offset") & ~before["untuned"] & (before["tune_fraction"] == 1)]
    name = tuned.index[0]
    metrics = json.loads((copy / "runs" / name / "metrics.json").read_text())
    metrics.update(best_epoch=0, trigger_text="peace love")  # as if no tuned epoch met the floor
    (copy / "runs" / name / "metrics.json").write_text(json.dumps(metrics))
    after = collect_runs(copy).set_index("run_id")
    assert after.loc[name, "untuned"] and after["untuned"].sum() == before["untuned"].sum() + 1
    md = write_report(copy)[1].read_text(encoding="utf-8")
    lam, criterion = f"{tuned.loc[name, 'lam']:g}", tuned.loc[name, "criterion"]
    flagged = [
        line for line in md.splitlines() if "untuned: epoch 0 kept" in line and "| mask_offset |" in line
    ]
    assert any(f"| {lam} | 1 |" in line for line in flagged)
    assert "## Hard trigger words" in md and f"| {name} | {criterion} | {lam} |" in md and "peace love" in md
    efficiency = md[md.index("## Data efficiency") :]
    rows = [line for line in efficiency.splitlines() if line.startswith("| EO | mask_offset | 1 |")]
    assert [row.split(" | ")[3] for row in rows] == ["0.3", "1"]  # the share and the full tuning split


def test_report_marks_process_wide_memory_peaks(sweep_dir, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(sweep_dir, copy)
    runs = collect_runs(copy).set_index("run_id")
    assert not runs["peak_memory_bound"].any()  # every run read its own peak
    path = copy / "runs" / "erm-s0" / "metrics.json"
    metrics = json.loads(path.read_text())
    del metrics["peak_memory_scope"]  # as recorded before per-run readings
    path.write_text(json.dumps(metrics))
    assert collect_runs(copy).set_index("run_id")["peak_memory_bound"].to_dict() == {
        name: name == "erm-s0" for name in runs.index
    }
    md = write_report(copy)[1].read_text(encoding="utf-8")
    methods = ("| erm |", "| mask_offset |", "| advpost |")
    rows = [line for line in md.splitlines() if line.startswith(methods)]
    assert rows and all(("≤" in row) == row.startswith("| erm |") for row in rows)


def test_report_group_run_option(sweep_dir, tmp_path):
    html_path, _ = write_report(sweep_dir, out=tmp_path, group_run="erm-s1")
    page = html_path.read_text(encoding="utf-8")
    assert "Per-group rates of run erm-s1" in page and "Learned" not in page
    with pytest.raises(ValueError, match=r"group_run='nope' is not a finished run"):
        write_report(sweep_dir, out=tmp_path, group_run="nope")
    with pytest.raises(ValueError, match=r"matched_accuracy_drop=-1 is not valid"):
        write_report(sweep_dir, out=tmp_path, matched_accuracy_drop=-1)


def test_report_on_an_empty_directory_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no finished runs"):
        write_report(tmp_path)
    assert not (tmp_path / REPORT_HTML).exists()


# Plot unit tests on a hand-made runs table (no training).


def _run(method, criterion, lam, seed, accuracy, gap, *, fraction=1.0, degenerate="", options="", family=""):
    row = {
        "run_id": f"{method}-{criterion}-{lam}-{fraction}-s{seed}",
        "path": "",
        "method": method,
        "criterion": criterion,
        "lam": lam,
        "seed": seed,
        "tune_fraction": fraction,
        "options": options,
        "trigger_options": "",
        "family_options": family,
    }
    for prefix in ("", "val_"):
        row.update({prefix + k: 0.5 for k in TABLE_KEYS})
        row.update({prefix + "accuracy": accuracy, prefix + "dp_gap": gap, prefix + "eo_gap": gap * 1.2})
    row.update(
        trainable_parameters=10,
        wall_time_s=1.0,
        peak_memory_mb=100.0,
        examples_per_second=1e4,
        uses_z_at_inference=False,
        degenerate=degenerate,
    )
    return row


@pytest.fixture
def summary():
    rows = [_run("base", None, None, s, 0.80, 0.30) for s in (0, 1)]
    for crit in ("demographic_parity", "equalized_odds"):
        for lam, acc, gap in ((0.3, 0.79, 0.2), (1.0, 0.77, 0.12), (3.0, 0.74, 0.05)):
            rows += [_run("mask_offset", crit, lam, s, acc + 0.01 * s, gap) for s in (0, 1)]
        rows += [_run("advpost", crit, 1.0, s, 0.75, 0.15) for s in (0, 1)]
        rows += [_run("advpost", crit, 3.0, s, 0.70, 0.0, degenerate="predicts one class") for s in (0, 1)]
    for frac in (0.01, 0.1, 0.5):  # smaller shares train for more epochs: another options label
        rows += [
            _run(
                "mask_offset",
                "equalized_odds",
                1.0,
                s,
                0.7 + frac / 10,
                0.2 - frac / 10,
                fraction=frac,
                options=f"epochs={round(10 / frac)}",
            )
            for s in (0, 1)
        ]
    # Same method and lambda on all the data, but another accuracy floor: not in the family.
    floor = "max_accuracy_drop=0.04"
    rows += [
        _run("mask_offset", "equalized_odds", 1.0, s, 0.7, 0.1, options=floor, family=floor) for s in (0, 1)
    ]
    rows.append(_run("base", None, None, 2, 0.60, 0.90))  # only a transfer target: not the reference
    return summarize(pd.DataFrame(rows))


def test_summary_reference_and_efficiency_families(summary):
    assert summary["base_seeds"] == [0, 1] and summary["base"]["accuracy"] == pytest.approx(0.80)
    families = efficiency_families(summary["configs"], Criterion.EQUALIZED_ODDS)
    assert [(label, method) for label, method, _ in families] == [("mask_offset, λ=1", "mask_offset")]
    assert families[0][2]["tune_fraction"].tolist() == [0.01, 0.1, 0.5, 1.0]
    assert families[0][2]["options"].tolist()[-1] == ""  # the full-data run of the same options
    assert efficiency_families(summary["configs"], Criterion.DEMOGRAPHIC_PARITY) == []


def test_plot_tradeoff_draws_trends_only_through_usable_points(summary):
    fig = plot_tradeoff(summary)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    for ax in fig.axes:
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels == ["advpost", "mask_offset", "degenerate", "base model"]
        assert len(ax.lines) == 1  # mask_offset has 3 usable points; advpost only 1 (the other is degenerate)
    fig.savefig(io.BytesIO(), format="png")


def test_plot_efficiency(summary):
    fig = plot_efficiency(summary)
    assert isinstance(fig, Figure) and len(fig.axes) == 2  # only equalized odds has fractions < 1
    assert all(ax.get_xscale() == "log" for ax in fig.axes)  # 0.01 .. 1 spans more than 10x
    no_fractions = {**summary, "configs": summary["configs"][summary["configs"]["tune_fraction"] == 1.0]}
    with pytest.raises(ValueError, match="no configuration with tune_fraction < 1"):
        plot_efficiency(no_fractions)
    with pytest.raises(TypeError, match="expected the dict returned by summarize"):
        plot_efficiency([1, 2])


def test_plot_transfer():
    transfers = {
        "t-dp-s0": {
            "criterion": "demographic_parity",
            "targets": {"base-s1": {"share_of_reduction_kept": 0.8}},
        },
        "t-eo-s1": {
            "criterion": "equalized_odds",
            "targets": {
                "base-s0": {"share_of_reduction_kept": math.nan},
                "base-s2": {"share_of_reduction_kept": -0.2},
            },
        },
    }
    fig = plot_transfer(transfers)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "t-dp-s0 → base-s1",
        "t-eo-s1 → base-s0",
        "t-eo-s1 → base-s2",
    ]
    assert any("n/a" in t.get_text() for t in ax.texts)
    assert sorted(line.get_xdata()[0] for line in ax.lines) == [0.0, 0.7, 1.0]
    with pytest.raises(ValueError, match="expected a non-empty mapping"):
        plot_transfer({})


def test_plot_group_rates():
    test = {
        "by_group": [
            {"group": g, "count": 10, "selection_rate": r, "tpr": r, "fpr": None, "accuracy": 0.7}
            for g, r in (("a", 0.2), ("b", 0.6), ("c", 0.9))
        ]
    }
    for metrics in (test, {"test": test}):
        fig = plot_group_rates(metrics, title="run x")
        assert isinstance(fig, Figure) and len(fig.axes) == 1
        assert len(fig.axes[0].patches) == 3 * 4 and fig.axes[0].get_title() == "run x"
    with pytest.raises(ValueError, match="has no 'by_group' rows"):
        plot_group_rates({"val": {}}, title="x")


def test_plot_trigger_uses_the_triggers_own_plot():
    trigger = MaskOffsetTrigger(num_features=3)
    with torch.no_grad():
        trigger.mask_scores[1] = -1.0
        trigger.offset.copy_(torch.tensor([0.5, -0.2, 0.0]))
    fig = plot_trigger(trigger, feature_names=["age", "sex", "income"])
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["age", "sex  (dropped)", "income"]
    assert len(fig.axes[0].patches) == 2 * 3
    with pytest.raises(ValueError, match="feature_names has 2 names"):
        plot_trigger(trigger, feature_names=["a", "b"])
    with pytest.raises(TypeError, match=r"expected a fairreprogram\.triggers\.Trigger"):
        plot_trigger("mask_offset")


def test_wide_mask_offset_plot_shows_the_features_changed_most():
    trigger = MaskOffsetTrigger(num_features=100)
    with torch.no_grad():
        trigger.offset[7] = 2.0
        trigger.mask_scores[90] = -1.0
    fig = plot_trigger(trigger)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(labels) == 40 and "x7" in labels and "x90  (dropped)" in labels
    assert "40 of 100 features" in fig.axes[0].get_title()


def test_default_trigger_plot_is_bars_or_a_note():
    small = MaskOffsetTrigger(num_features=4)
    fig = Figure()
    ax = fig.subplots()
    Trigger.plot(small, ax)  # the base-class default, not the mask_offset override
    assert len(ax.patches) == small.num_trainable_parameters()
    big = MaskOffsetTrigger(num_features=PLOT_PARAMETER_LIMIT)
    ax = Figure().subplots()
    Trigger.plot(big, ax)
    assert not ax.patches and "too many to draw" in ax.texts[0].get_text()
    assert np.isclose(ax.texts[0].get_position()[0], 0.5)
