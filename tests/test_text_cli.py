"""Text end to end: train-base, reprogram and evaluate on a CSV of posts with a tiny BERT saved
in the test, and a small text sweep with soft and hard triggers, AdvPost and transfer."""

import json

import numpy as np
import pandas as pd
import pytest
import transformers
from typer.testing import CliRunner

from fairreprogram.cli import app
from fairreprogram.experiments import SweepConfig, collect_runs, run_sweep, write_report

runner = CliRunner()
WORDS = [
    "good",
    "bad",
    "nice",
    "awful",
    "fine",
    "poor",
    "love",
    "hate",
    "people",
    "they",
    "them",
    "we",
    "us",
    "here",
    "there",
    "today",
    "news",
]
IDENTITY = ["muslim", "jewish", "women"]


def _ok(result):
    if result.exit_code != 0:
        import traceback

        detail = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
        raise AssertionError(result.output + detail)
    return result.output


@pytest.fixture
def text_setup(tmp_path, monkeypatch):
    """A tiny BERT (saved like a hub model folder) and 240 posts where identity mentions are
    over-represented among the hateful ones."""
    monkeypatch.setenv("FAIRREPROGRAM_CACHE_DIR", str(tmp_path / "cache"))
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *IDENTITY]
    tokenizer = transformers.BertTokenizer(vocab={t: i for i, t in enumerate(tokens)})
    config = transformers.BertConfig(
        vocab_size=len(tokens),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=24,
    )
    model_dir = tmp_path / "tiny-bert"
    transformers.BertModel(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(240):
        hate = int(rng.random() < 0.3)
        mention = int(rng.random() < (0.7 if hate else 0.2))
        words = list(rng.choice(WORDS[8:], size=int(rng.integers(2, 9))))
        words.append("hate" if hate else "nice")
        if mention:
            words.insert(int(rng.integers(0, len(words))), str(rng.choice(IDENTITY)))
        split = "test" if i % 6 == 0 else "dev" if i % 6 == 1 else "train"
        rows.append({"text": " ".join(words), "is_hate": hate, "split": split})
    csv = tmp_path / "posts.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    terms = tmp_path / "terms.txt"
    terms.write_text("\n".join(IDENTITY) + "\n")
    return {"model": model_dir, "csv": csv, "terms": terms}


def _base(setup, out):
    args = ["train-base", "--data", f"csv:{setup['csv']}", "--text-col", "text", "--label-col", "is_hate"]
    args += ["--identity-terms", str(setup["terms"]), "--split-col", "split", "--model", str(setup["model"])]
    args += ["--max-length", "20", "--epochs", "2", "--batch-size", "16", "--out", str(out), "--quiet"]
    return runner.invoke(app, args)


def test_text_train_reprogram_evaluate_round_trip(text_setup, tmp_path):
    base, rep = tmp_path / "base", tmp_path / "rep"
    assert "accuracy" in _ok(_base(text_setup, base))
    saved = json.loads((base / "data.json").read_text())
    assert saved["group_names"] == ["no_identity", "identity"]
    assert (base / "model" / "model.safetensors").is_file()
    args = ["reprogram", "--base", str(base), "--out", str(rep), "--trigger", "hard", "--num-tokens", "3"]
    _ok(runner.invoke(app, [*args, "--epochs", "2", "--batch-size", "16", "--lr", "0.1", "--quiet"]))
    trigger = json.loads((rep / "trigger" / "trigger_config.json").read_text())
    assert trigger["kind"] == "hard" and trigger["config"]["num_tokens"] == 3
    text = _ok(runner.invoke(app, ["evaluate", "--base", str(base), "--trigger", str(rep)]))
    assert "eo_gap" in text and "identity" in text


def test_text_options_that_do_not_fit_are_refused(text_setup, tmp_path):
    result = _base(text_setup, tmp_path / "a").__class__
    args = [
        "train-base",
        "--data",
        "arrests",
        "--out",
        str(tmp_path / "b"),
        "--model",
        str(text_setup["model"]),
    ]
    result = runner.invoke(app, [*args, "--quiet"])
    assert result.exit_code == 2 and "only for text data" in result.output
    words = tmp_path / "words.txt"
    words.write_text("zzz\nqqq\n")
    _ok(_base(text_setup, tmp_path / "base"))
    args = ["reprogram", "--base", str(tmp_path / "base"), "--out", str(tmp_path / "r"), "--trigger", "hard"]
    result = runner.invoke(app, [*args, "--allowed-words", str(words), "--quiet"])
    assert result.exit_code == 2 and "no word that is a single token" in result.output


def test_text_sweep_with_prompt_triggers_advpost_and_transfer(text_setup, tmp_path):
    words = tmp_path / "allowed.txt"
    words.write_text("\n".join(WORDS) + "\n")  # a list in trigger_options would be a grid axis
    config = SweepConfig.from_dict(
        {
            "name": "tiny-text",
            "data": {
                "spec": f"text:{text_setup['csv']}",
                "text_col": "text",
                "label_col": "is_hate",
                "identity_terms": str(text_setup["terms"]),
                "split_col": "split",
                "tokenizer": str(text_setup["model"]),
                "max_length": 20,
            },
            "base": {"model": str(text_setup["model"]), "train": {"epochs": 1, "batch_size": 16}},
            "train": {"epochs": 1, "batch_size": 16, "max_accuracy_drop": 1.0, "lr": 0.1},
            "seeds": [0, 1],
            "transfer": True,
            "grid": [
                {
                    "method": ["soft", "hard"],
                    "criterion": "eo",
                    "lam": 1.0,
                    "seed": 0,
                    "trigger_options": {"num_tokens": 2, "allowed_words": str(words)},
                },
                {"method": "advpost", "criterion": "eo", "lam": 1.0, "seed": 0, "train": {"lr": 1e-4}},
            ],
        }
    )
    run_sweep(config, out=tmp_path / "sweep", workers=1, threads_per_worker=1, progress=False)
    runs = collect_runs(tmp_path / "sweep")
    assert set(runs["method"]) == {"base", "soft", "hard", "advpost"}
    soft = runs[runs["method"] == "soft"].iloc[0]
    advpost = runs[runs["method"] == "advpost"].iloc[0]
    assert soft["trainable_parameters"] == 2 * (5 + len(WORDS) + len(IDENTITY))  # scores over the vocabulary
    assert advpost["trainable_parameters"] > 10 * soft["trainable_parameters"]
    hard_run = next((tmp_path / "sweep" / "runs").glob("hard-eo-lam1-s0*"))
    transfer = json.loads((hard_run / "transfer.json").read_text())
    assert "base-s1" in transfer["targets"]
    hard = runs[runs["method"] == "hard"].iloc[0]
    assert len(hard["trigger_text"].split()) == 2 and set(hard["trigger_text"].split()) <= set(WORDS)
    html, _ = write_report(tmp_path / "sweep")
    assert "hard" in html.read_text()
