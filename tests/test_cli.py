import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fairreprogram import __version__
from fairreprogram.cli import app
from fairreprogram.experiments import METRICS_NAME, RUN_CONFIG_NAME, prepare_run_dir

runner = CliRunner()


@pytest.fixture
def csv_path(tmp_path):
    rng = np.random.default_rng(0)
    n = 600
    signal = rng.normal(size=n)
    y = (signal + 0.7 * rng.normal(size=n) > 0).astype(int)
    z = np.where(rng.random(n) < 0.85, y, rng.integers(0, 2, n))
    frame = pd.DataFrame(
        {
            "score": signal,
            "other": rng.normal(size=n),
            "city": rng.choice(["a", "b", "c"], n),
            "sex": np.where(z == 1, "F", "M"),
            "label": np.where(y == 1, "good", "bad"),
        }
    )
    path = tmp_path / "toy.csv"
    frame.to_csv(path, index=False)
    return path


def _ok(result):
    if result.exit_code != 0:
        import traceback

        detail = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
        raise AssertionError(result.output + detail)
    return result.output


def _base(csv_path, out, *extra):
    return runner.invoke(
        app,
        [
            "train-base",
            "--data",
            f"csv:{csv_path}",
            "--target",
            "label",
            "--positive-label",
            "good",
            "--sensitive",
            "sex",
            "--out",
            str(out),
            "--epochs",
            "5",
            "--lr",
            "0.01",
            "--quiet",
            *extra,
        ],
    )


def test_version_and_help_list_every_command():
    assert __version__ in _ok(runner.invoke(app, ["--version"]))
    text = _ok(runner.invoke(app, ["--help"]))
    for command in ("demo", "train-base", "reprogram", "evaluate"):
        assert command in text
    assert "--trigger-option" in _ok(runner.invoke(app, ["reprogram", "--help"]))


def test_train_reprogram_evaluate_round_trip(csv_path, tmp_path):
    base, rep = tmp_path / "base", tmp_path / "rep"
    assert "accuracy" in _ok(_base(csv_path, base))
    metrics = json.loads((base / METRICS_NAME).read_text())
    assert {"val", "test"} <= set(metrics) and "eo_gap_paper" in metrics["test"]["overall"]
    assert json.loads((base / RUN_CONFIG_NAME).read_text())["library_version"] == __version__
    out = _ok(
        runner.invoke(
            app,
            [
                "reprogram",
                "--base",
                str(base),
                "--out",
                str(rep),
                "--criterion",
                "dp",
                "--lam",
                "1",
                "--epochs",
                "4",
                "--lr",
                "0.05",
                "--quiet",
            ],
        )
    )
    assert "dp_gap" in out
    assert (rep / "trigger" / "trigger_config.json").is_file() and (rep / "history.json").is_file()
    out = _ok(
        runner.invoke(
            app,
            [
                "evaluate",
                "--base",
                str(base),
                "--trigger",
                str(rep),
                "--split",
                "val",
                "--bootstrap",
                "20",
                "--json",
                str(tmp_path / "eval.json"),
            ],
        )
    )
    assert "per group" in out
    saved = json.loads((tmp_path / "eval.json").read_text())
    rep_metrics = json.loads((rep / METRICS_NAME).read_text())
    assert saved["overall"]["accuracy"] == pytest.approx(rep_metrics["val"]["overall"]["accuracy"])
    assert saved["confidence_intervals"]
    compare = ["evaluate", "--base", str(base), "--trigger", str(rep), "--split", "val", "--compare"]
    out = _ok(runner.invoke(app, [*compare, "--bootstrap", "50", "--json", str(tmp_path / "cmp.json")]))
    assert "with trigger" in out and "interval of the change" in out
    assert "50 paired resamples of 60 rows of the val split" in out
    compared = json.loads((tmp_path / "cmp.json").read_text())
    base_metrics = json.loads((base / METRICS_NAME).read_text())
    assert compared["before"]["dp_gap"] == pytest.approx(base_metrics["val"]["overall"]["dp_gap"])
    assert compared["after"]["dp_gap"] == pytest.approx(rep_metrics["val"]["overall"]["dp_gap"])
    low, high = compared["confidence_intervals"]["dp_gap"]
    assert low <= compared["difference"]["dp_gap"] <= high
    alone = runner.invoke(app, ["evaluate", "--base", str(base), "--compare"])
    assert alone.exit_code == 2 and "--compare needs --trigger" in alone.output


def test_finished_run_is_refused_unless_overwrite(csv_path, tmp_path):
    base = tmp_path / "base"
    _ok(_base(csv_path, base))
    (base / "notes.txt").write_text("mine")
    before = (base / METRICS_NAME).read_text()
    refused = _base(csv_path, base)
    assert refused.exit_code == 2 and "already holds a finished run" in refused.output
    assert (base / METRICS_NAME).read_text() == before
    _ok(_base(csv_path, base, "--overwrite"))
    assert (base / "notes.txt").read_text() == "mine"


def test_unfinished_run_resumes_and_other_config_is_refused(csv_path, tmp_path):
    base, rep = tmp_path / "base", tmp_path / "rep"
    _ok(_base(csv_path, base))
    args = ["reprogram", "--base", str(base), "--out", str(rep), "--epochs", "3", "--quiet"]
    _ok(runner.invoke(app, args))
    (rep / METRICS_NAME).unlink()  # as if interrupted after the last checkpoint
    _ok(runner.invoke(app, args))
    assert len(json.loads((rep / "history.json").read_text())) == 4
    (rep / METRICS_NAME).unlink()
    other = runner.invoke(app, [*args, "--lam", "2"])
    assert other.exit_code == 2 and "different configuration" in other.output


def test_accuracy_metric_option_sets_the_selection_floor(csv_path, tmp_path):
    base, rep = tmp_path / "base", tmp_path / "rep"
    _ok(_base(csv_path, base))
    args = ["reprogram", "--base", str(base), "--out", str(rep), "--epochs", "2", "--quiet"]
    _ok(runner.invoke(app, [*args, "--accuracy-metric", "balanced_accuracy"]))
    config = json.loads((rep / RUN_CONFIG_NAME).read_text())
    assert config["train"]["accuracy_metric"] == "balanced_accuracy"
    bad = runner.invoke(app, [*args, "--overwrite", "--accuracy-metric", "f1"])
    assert bad.exit_code == 2 and "accuracy_metric='f1'" in bad.output
    assert json.loads((rep / RUN_CONFIG_NAME).read_text()) == config  # nothing written was lost


def test_a_random_trigger_start_follows_the_seed_option(csv_path, tmp_path, noisy_start):
    import torch

    from fairreprogram.utils import load_tensors

    base, rep = tmp_path / "base", tmp_path / "rep"
    _ok(_base(csv_path, base))
    args = ["reprogram", "--base", str(base), "--out", str(rep), "--epochs", "1", "--quiet", "--overwrite"]
    tensors = {}
    for state, seed in ((1, "0"), (2, "0"), (1, "1")):
        torch.manual_seed(state)  # whatever ran before in this process
        _ok(runner.invoke(app, [*args, "--trigger", noisy_start, "--seed", seed]))
        tensors[state, seed] = load_tensors(rep / "trigger" / "trigger.safetensors")["offset"]
    assert torch.equal(tensors[1, "0"], tensors[2, "0"])
    assert not torch.equal(tensors[1, "0"], tensors[1, "1"])


def test_a_run_directory_in_use_is_refused_and_left_alone(csv_path, tmp_path):
    from fairreprogram.utils import directory_lock

    base, rep = tmp_path / "base", tmp_path / "rep"
    _ok(_base(csv_path, base))
    with directory_lock(rep, what="run"):  # another reprogram is writing there
        busy = runner.invoke(app, ["reprogram", "--base", str(base), "--out", str(rep), "--quiet"])
        assert busy.exit_code == 2 and "is in use by another run" in busy.output
        assert not (rep / RUN_CONFIG_NAME).exists()
    before = (base / METRICS_NAME).read_text()
    with directory_lock(base, what="run"):  # even --overwrite leaves a busy run alone
        busy = _base(csv_path, base, "--overwrite")
        assert busy.exit_code == 2 and "is in use by another run" in busy.output
    assert (base / METRICS_NAME).read_text() == before


def test_bad_inputs_give_clear_errors(csv_path, tmp_path):
    missing = runner.invoke(
        app,
        [
            "train-base",
            "--data",
            f"csv:{csv_path}",
            "--target",
            "nope",
            "--sensitive",
            "sex",
            "--out",
            str(tmp_path / "x"),
            "--quiet",
        ],
    )
    assert missing.exit_code == 2 and "nope" in missing.output
    base = tmp_path / "base"
    _ok(_base(csv_path, base))
    bad_lam = runner.invoke(
        app, ["reprogram", "--base", str(base), "--out", str(tmp_path / "r"), "--lam", "-1", "--quiet"]
    )
    assert bad_lam.exit_code == 2 and "lam=-1.0 is not valid" in bad_lam.output
    reprogram = ["reprogram", "--base", str(base), "--out", str(tmp_path / "r"), "--quiet", "--trigger"]
    bad_trigger = runner.invoke(app, [*reprogram, "hologram"])
    assert bad_trigger.exit_code == 2 and "'hologram' is not a registered trigger kind" in bad_trigger.output
    image_trigger = runner.invoke(app, [*reprogram, "border"])  # an image trigger on tabular data
    assert image_trigger.exit_code == 2 and "must be (C, H, W)" in image_trigger.output
    no_base = runner.invoke(app, ["evaluate", "--base", str(tmp_path / "none")])
    assert no_base.exit_code == 2 and "not a finished train-base run" in no_base.output


def test_loading_a_trigger_for_another_input_size_is_refused(csv_path, tmp_path):
    from fairreprogram.triggers import MaskOffsetTrigger

    base = tmp_path / "base"
    _ok(_base(csv_path, base))
    MaskOffsetTrigger(num_features=3).save_pretrained(tmp_path / "small")
    result = runner.invoke(app, ["evaluate", "--base", str(base), "--trigger", str(tmp_path / "small")])
    assert result.exit_code == 2 and "built for inputs of shape (3,)" in result.output


def test_prepare_run_dir_rejects_a_file(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ValueError, match="is not a directory"):
        prepare_run_dir(target, {"a": 1})


def test_demo_quick_writes_summary(tmp_path):
    out = tmp_path / "demo"
    text = _ok(runner.invoke(app, ["demo", "--out", str(out), "--epochs", "2", "--quiet"]))
    assert "trigger_dp" in text
    summary = json.loads((out / "summary.json").read_text())
    for name in ("base", "trigger_dp", "trigger_eo"):
        for key in ("accuracy", "dp_gap", "eo_gap", "worst_group_accuracy"):
            assert 0 <= summary[name][key] <= 1
    assert (out / "demo.png").stat().st_size > 10_000
    assert (out / "trigger_eo" / "trigger.safetensors").is_file()


@pytest.mark.slow
def test_demo_triggers_meet_their_targets(tmp_path):
    """The full demo: each trigger cuts its gap by >= 30% at <= 3 points of accuracy loss and
    <= 6 points of balanced accuracy (its validation floor is 3 points of balanced accuracy)."""
    from fairreprogram.experiments import run_demo

    summary = run_demo(out=tmp_path, progress=False)
    base = summary["base"]
    for name, gap in (("trigger_dp", "dp_gap"), ("trigger_eo", "eo_gap")):
        row = summary[name]
        assert row[gap] <= 0.7 * base[gap], (name, row[gap], base[gap])
        assert base["accuracy"] - row["accuracy"] <= 0.03, (name, row["accuracy"], base["accuracy"])
        loss = base["balanced_accuracy"] - row["balanced_accuracy"]
        assert loss <= 0.06, (name, row["balanced_accuracy"], base["balanced_accuracy"])


def test_sweep_runs_and_report_commands(tmp_path):
    config = {
        "name": "cli",
        "data": {"spec": "arrests"},
        "base": {"hidden_sizes": [8], "train": {"epochs": 2}},
        "train": {"epochs": 2},
        "grid": [{"method": ["mask_offset", "erm"], "criterion": "dp", "lam": 1.0}],
    }
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(config))
    out = tmp_path / "out"
    text = _ok(runner.invoke(app, ["sweep", str(path), "--out", str(out), "--quiet"]))
    assert "2 trials (2 run now)" in text and f"fairreprogram report {out}" in text
    listing = _ok(runner.invoke(app, ["runs", str(out)]))
    assert "mask_offset-dp-lam1-s0" in listing and "base-s0" in listing and "finished" in listing
    assert "report.html" in _ok(runner.invoke(app, ["report", str(out)]))
    assert (out / "report.html").stat().st_size > 10_000 and (out / "report.md").is_file()
    empty = runner.invoke(app, ["report", str(tmp_path / "nothing")])
    assert empty.exit_code == 2 and "holds no finished runs" in empty.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**config, "grid": [{"method": "boost"}]}))
    refused = runner.invoke(app, ["sweep", str(bad), "--out", str(out), "--quiet"])
    assert refused.exit_code == 2 and "method='boost' is not valid" in refused.output
