"""bench/targets.py on a tiny sweep: every figure it reports comes from the runs."""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from fairreprogram.experiments import SweepConfig, build_task, collect_runs, run_sweep

ROOT = Path(__file__).resolve().parents[1]
SWEEP = {
    "name": "targets-test",
    "data": {"spec": "arrests", "seed": 0},
    "base": {"hidden_sizes": [8], "train": {"epochs": 4, "class_weight": "balanced"}},
    "train": {"epochs": 5, "lr": 0.05, "class_weight": "balanced", "max_accuracy_drop": 0.05},
    "methods": {"advpost": {"lr": 0.001}},
    "seeds": [0, 1],
    "transfer": True,
    "grid": [
        {"method": ["mask_offset", "advpost"], "criterion": ["dp", "eo"], "lam": [0.3, 3.0], "seed": 0},
        {
            "method": ["mask_offset", "advpost"],
            "criterion": "eo",
            "lam": 1.0,
            "tune_fraction": 0.05,
            "seed": 0,
        },
    ],
}


def _load():
    spec = importlib.util.spec_from_file_location("bench_targets", ROOT / "bench" / "targets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _eligible(runs, base, criterion, metric, drop):
    """Tuned full-data trigger runs of ``criterion`` whose ``metric`` is within ``drop`` of the base's."""
    same = runs[(runs["criterion"] == criterion) & (runs["method"] == "mask_offset")]
    return same[(same["tune_fraction"] == 1) & ~same["untuned"] & (same[metric] >= base[metric] - drop)]


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("targets-sweep")
    run_sweep(SweepConfig.from_dict(SWEEP), out=out, workers=1, threads_per_worker=1, progress=False)
    return out


def test_targets_are_computed_from_the_runs(sweep_dir):
    targets = _load()
    assert targets.main(["celeba", str(sweep_dir)]) == 0
    result = json.loads((sweep_dir / "targets.json").read_text())
    assert (sweep_dir / "targets.md").read_text().startswith("# Targets: CelebA")
    runs = collect_runs(sweep_dir).set_index("run_id")
    base = runs[(runs["method"] == "base") & (runs["seed"] == 0)].iloc[0]
    picked = 0
    for quality in result["quality"]:
        gap, pick = quality["gap"], quality["chosen_on_val"]
        # Candidates: tuned full-data trigger runs within the floor on validation.
        eligible = _eligible(runs, base, quality["criterion"], "val_accuracy", targets.MAX_DROP)
        if pick is None:
            assert eligible.empty and quality["verdict"] == "not yet measurable"
            continue
        picked += 1
        row = runs.loc[pick["run"]]
        assert pick["run"] in eligible.index and not pick["untuned"]
        assert pick[gap] == pytest.approx(row[gap])
        assert pick["reduction"] == pytest.approx((base[gap] - row[gap]) / base[gap])
        assert row[f"val_{gap}"] == eligible[f"val_{gap}"].min()  # none eligible is lower
        how = pick["how"]  # the per-group rates behind the cut, read from both runs' metrics
        overall = json.loads((Path(base["path"]) / "metrics.json").read_text())["test"]["overall"]
        rate = {"dp_gap": "selection_rate"}.get(
            gap, "fpr" if overall["fpr_gap"] > overall["tpr_gap"] else "tpr"
        )
        assert how["rate"] == rate
        for name, source in ((0, base), (1, row)):
            groups = json.loads((Path(source["path"]) / "metrics.json").read_text())["test"]["by_group"]
            assert {g["group"]: g[rate] for g in groups} == {k: v[name] for k, v in how["groups"].items()}
        sign = -1 if rate == "fpr" else 1
        better, worse = how["better_off"], how["worse_off"]
        assert sign * how["groups"][better][0] >= sign * how["groups"][worse][0]
        lost = sign * (how["groups"][better][0] - how["groups"][better][1])
        gained = sign * (how["groups"][worse][1] - how["groups"][worse][0])
        assert how["levels_down"] == (lost > gained)
        assert quality["verdict"] in ("met", "missed")
    assert picked  # this sweep has tuned EO triggers within the floor
    labels = build_task(SWEEP["data"]).dataset("test").tensors[1].numpy()
    majority = np.bincount(labels).max() / len(labels)
    for quality in result["quality"]:
        assert quality["constant_accuracy"] == pytest.approx(majority)
        assert quality["floor_admits_constant"] == (majority >= base["accuracy"] - targets.MAX_DROP)
        # The balanced pick: the lowest validation gap under a balanced-accuracy floor.
        gap, pick = quality["gap"], quality["chosen_on_val_balanced"]
        eligible = _eligible(runs, base, quality["criterion"], "val_balanced_accuracy", targets.MAX_DROP)
        if pick is None:
            assert eligible.empty
        else:
            assert pick["run"] in eligible.index
            assert runs.loc[pick["run"], f"val_{gap}"] == eligible[f"val_{gap}"].min()
    efficiency = result["data_efficiency"]
    assert efficiency["fraction"] == 0.01 and efficiency["runs"] == {}  # no 1% runs here
    assert efficiency["verdict"] == "not yet measurable"
    assert {"mask_offset", "advpost"} <= set(result["matched_accuracy"][0]["bias_at_matched_accuracy"])
    chosen = result["transfer"]["chosen_triggers"]
    assert chosen and all(set(t) == {"base-s1"} for t in chosen.values())
    for targets_of_run in chosen.values():
        share = targets_of_run["base-s1"]["share_kept"]
        assert share is None or math.isnan(share) or isinstance(share, float)


def test_bias_at_matched_balanced_accuracy_lies_on_each_methods_front(sweep_dir):
    targets = _load()
    runs = collect_runs(sweep_dir)
    base = runs[(runs["method"] == "base") & (runs["seed"] == 0)].iloc[0]
    result = targets._matched_balanced(runs, base, "equalized_odds")
    target = base["balanced_accuracy"] - targets.MAX_DROP
    assert result["matched_balanced_accuracy"] == pytest.approx(target)
    full = runs[(runs["criterion"] == "equalized_odds") & (runs["tune_fraction"] == 1) & (runs["seed"] == 0)]
    full = full[full["degenerate"] == ""]
    assert set(result["bias_at_matched_balanced_accuracy"]) == set(full["method"])
    for method, bias in result["bias_at_matched_balanced_accuracy"].items():
        part = full[full["method"] == method]
        reaching = part[part["balanced_accuracy"] >= target]
        if reaching.empty:
            assert math.isnan(bias)
        else:  # on the front: no lower than its lowest gap, no higher than a run that reaches it
            assert part["eo_gap"].min() - 1e-12 <= bias <= reaching["eo_gap"].min() + 1e-12


def test_data_efficiency_compares_trigger_and_advpost(sweep_dir):
    targets = _load()
    runs = collect_runs(sweep_dir)
    base = runs[(runs["method"] == "base") & (runs["seed"] == 0)].iloc[0]
    result = targets._efficiency(runs, base, 0.05)
    assert set(result["runs"]) == {"mask_offset", "advpost"}
    for method, row in result["runs"].items():
        assert row["eo_gap_change"] == pytest.approx(row["eo_gap"] - base["eo_gap"])
        assert (
            row["tune_examples"]
            == runs[(runs["method"] == method) & (runs["tune_fraction"] == 0.05)].iloc[0]["tune_examples"]
        )
    assert result["verdict"] in ("met", "missed")


def test_bootstrap_gives_base_intervals_and_paired_changes(sweep_dir):
    from fairreprogram.experiments import compare_run

    targets = _load()
    assert targets.main(["celeba", str(sweep_dir), "--bootstrap", "20"]) == 0
    result = json.loads((sweep_dir / "targets.json").read_text())
    boot = result["bootstrap"]
    assert boot["base"] == "base-s0" and {"dp_gap", "eo_gap"} <= set(boot["base_intervals"])
    assert all(0 <= low <= high <= 1 for low, high in boot["base_intervals"].values())
    keys = ("chosen_on_val", "chosen_on_val_balanced")
    chosen = {q[k]["run"] for q in result["quality"] for k in keys if q[k]}
    assert set(boot["changes"]) == chosen  # this sweep has no 1% runs
    runs = collect_runs(sweep_dir).set_index("run_id")
    base = runs.loc["base-s0"]
    for name, keys in boot["changes"].items():
        assert set(keys) == set(targets.CHANGE_KEYS)
        for key, change in keys.items():
            assert change["change"] == pytest.approx(runs.loc[name, key] - base[key])
            low, high = change["interval"]
            assert low <= change["change"] <= high
            assert change["excludes_zero"] == (low > 0 or high < 0)
        # the same paired comparison as the library's, resample for resample
        same = compare_run(
            base=sweep_dir / "bases" / "base-s0", trigger=runs.loc[name, "path"], n_bootstrap=20
        )
        assert same.confidence_intervals["eo_gap"] == pytest.approx(tuple(keys["eo_gap"]["interval"]))
    assert "paired" in (sweep_dir / "targets.md").read_text()
    with pytest.raises(SystemExit):
        targets.main(["celeba", str(sweep_dir), "--bootstrap", "-1"])


def test_shift_sets_each_run_against_its_base_model_flagging_as_many_rows(sweep_dir):
    targets = _load()
    assert targets.main(["celeba", str(sweep_dir), "--shift"]) == 0
    result = json.loads((sweep_dir / "targets.json").read_text())
    shifted = result["shifted_base"]
    assert "bootstrap" not in result
    runs = collect_runs(sweep_dir).set_index("run_id")
    own = runs[(runs["seed"] == 0) & runs["method"].isin(["mask_offset", "advpost"])]
    assert set(shifted) == set(own.index)  # every trigger and AdvPost run of seed 0
    for name, row in shifted.items():
        test = json.loads((Path(runs.loc[name, "path"]) / "metrics.json").read_text())["test"]["overall"]
        assert row["run"]["eo_gap"] == pytest.approx(test["eo_gap"])  # the run as its sweep scored it
        assert row["flagged"] == round(test["selection_rate"] * test["n"])
        assert row["shifted_base"]["selection_rate"] == pytest.approx(row["run"]["selection_rate"])
    assert "threshold moved" in (sweep_dir / "targets.md").read_text()
    # The base model against itself: its own top-m rows are its own predictions.
    split = targets._TestSplit(sweep_dir, collect_runs(sweep_dir))
    itself = targets._shifted_base(split, ["base-s0"])["base-s0"]
    assert itself["shifted_base"] == pytest.approx(itself["run"])


def test_the_second_celeba_task_checks_quality_only(sweep_dir):
    targets = _load()
    assert targets.main(["celeba-smiling", str(sweep_dir)]) == 0
    result = json.loads((sweep_dir / "targets.json").read_text())
    assert result["title"].startswith("CelebA Smiling")
    assert "original_code" not in result and result["speed"] is None
    assert [q["gap"] for q in result["quality"]] == ["eo_gap", "dp_gap"]
