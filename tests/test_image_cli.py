"""The CLI on image data: train-base, reprogram and evaluate on a generated folder of images,
the image demo, and the errors for options that do not fit the data."""

import json

import numpy as np
import pandas as pd
import PIL.Image
import pytest
import torch
from typer.testing import CliRunner

from fairreprogram.cli import app

runner = CliRunner()


def _ok(result):
    if result.exit_code != 0:
        import traceback

        detail = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
        raise AssertionError(result.output + detail)
    return result.output


@pytest.fixture
def image_csv(tmp_path, monkeypatch):
    """60 tiny images whose brightness is the label and whose red tint is the group."""
    monkeypatch.setenv("FAIRREPROGRAM_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    folder = tmp_path / "pics"
    folder.mkdir()
    rows = []
    for i in range(60):
        label, group = int(rng.integers(0, 2)), int(rng.integers(0, 2))
        pixels = rng.integers(0, 60, size=(10, 10, 3)) + 120 * label
        pixels[..., 0] += 60 * group
        PIL.Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{i}.png")
        rows.append({"file": f"pics/{i}.png", "label": label, "sensitive": ["a", "b"][group]})
    path = tmp_path / "meta.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _train_base(image_csv, out, *extra):
    args = ["train-base", "--data", f"images:{image_csv}", "--out", str(out), "--image-size", "8"]
    args += ["--arch", "resnet20", "--epochs", "2", "--batch-size", "16", "--quiet", *extra]
    return runner.invoke(app, args)


def test_image_train_reprogram_evaluate_round_trip(image_csv, tmp_path):
    base, rep = tmp_path / "base", tmp_path / "rep"
    assert "accuracy" in _ok(_train_base(image_csv, base))
    saved = json.loads((base / "data.json").read_text())
    assert saved["data"]["spec"] == f"images:{image_csv}" and saved["input_shape"] == [3, 8, 8]
    args = ["reprogram", "--base", str(base), "--out", str(rep), "--trigger", "patch", "--trigger-size", "3"]
    _ok(runner.invoke(app, [*args, "--epochs", "2", "--batch-size", "16", "--quiet"]))
    trigger = json.loads((rep / "trigger" / "trigger_config.json").read_text())
    assert trigger["kind"] == "patch" and trigger["config"]["size"] == 3 and trigger["config"]["height"] == 8
    text = _ok(runner.invoke(app, ["evaluate", "--base", str(base), "--trigger", str(rep), "--split", "val"]))
    assert "dp_gap" in text and "per group" in text


def test_reprogram_defaults_to_a_border_trigger_for_images(image_csv, tmp_path):
    base, rep = tmp_path / "base", tmp_path / "rep"
    _ok(_train_base(image_csv, base))
    args = ["reprogram", "--base", str(base), "--out", str(rep), "--trigger-size", "1", "--epochs", "1"]
    result = runner.invoke(app, [*args, "--quiet"])
    assert result.exit_code != 0 and "--trigger" in result.output  # a size needs a kind
    _ok(runner.invoke(app, ["reprogram", "--base", str(base), "--out", str(rep), "--epochs", "1", "--quiet"]))
    assert json.loads((rep / "trigger" / "trigger_config.json").read_text())["kind"] == "border"


def test_options_that_do_not_fit_the_data_are_named(image_csv, tmp_path):
    result = _train_base(image_csv, tmp_path / "a", "--hidden", "8")
    assert result.exit_code == 2 and "hidden_sizes" in result.output and "arch" in result.output
    result = runner.invoke(
        app, ["train-base", "--data", "arrests", "--out", str(tmp_path / "b"), "--image-size", "8", "--quiet"]
    )
    assert result.exit_code == 2 and "image_size" in result.output and "include_sensitive" in result.output
    result = _train_base(image_csv, tmp_path / "c", "--arch", "resnet99")
    assert result.exit_code == 2 and "resnet99" in result.output
    assert not (tmp_path / "c" / "metrics.json").exists()


def test_trigger_size_without_a_size_option_is_refused(image_csv, tmp_path):
    base = tmp_path / "base"
    _ok(_train_base(image_csv, base))
    args = ["reprogram", "--base", str(base), "--out", str(tmp_path / "r"), "--trigger", "mask_offset"]
    result = runner.invoke(app, [*args, "--trigger-size", "2", "--quiet"])
    assert result.exit_code != 0 and "no size" in result.output


def test_image_demo_quick_writes_summary_and_picture(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "--task", "image", "--out", str(out), "--epochs", "1", "--quiet"]
    assert "trigger_eo" in _ok(runner.invoke(app, args))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"] == "image" and summary["data"]["groups"] == ["red", "green"]
    for name in ("base", "trigger_dp", "trigger_eo"):
        assert 0 <= summary[name]["accuracy"] <= 1 and "by_group" in summary[name]
    assert summary["trigger_dp"]["trainable_parameters"] == 3 * (28 * 28 - 24 * 24)
    assert (out / "trigger.png").stat().st_size > 10_000
    assert (out / "trigger_dp" / "trigger.safetensors").is_file()


def test_unknown_demo_task_is_refused(tmp_path):
    result = runner.invoke(app, ["demo", "--task", "audio", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "audio" in result.output and "image" in result.output


@pytest.fixture
def two_torch_threads():
    """Run with 2 torch threads, as the README's image-demo figures were measured.

    The ResNet's float sums split by thread count, so its training takes another path on
    1 thread: there the demo measured base 0.843 and the DP trigger 0.813 (3.0 points).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_image_demo_triggers_meet_their_targets(tmp_path, two_torch_threads):
    """The full image demo: each trigger cuts its gap by >= 30% at <= 3 points of accuracy loss."""
    from fairreprogram.experiments import run_demo

    summary = run_demo(out=tmp_path, task="image", progress=False)
    base = summary["base"]
    for name, gap in (("trigger_dp", "dp_gap"), ("trigger_eo", "eo_gap")):
        row = summary[name]
        assert row[gap] <= 0.7 * base[gap], (name, row[gap], base[gap])
        assert base["accuracy"] - row["accuracy"] <= 0.03, (name, row["accuracy"], base["accuracy"])
