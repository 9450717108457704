"""The ``fairreprogram`` command line: demo, train-base, reprogram, evaluate, sweep, runs, report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from fairreprogram._version import __version__
from fairreprogram.baselines import ERM_DEFAULTS
from fairreprogram.engine import TrainConfig
from fairreprogram.metrics import TABLE_KEYS
from fairreprogram.triggers import available_triggers
from fairreprogram.utils import DirectoryLocked

__all__ = ["app", "main"]

_DEFAULTS = TrainConfig()

app = typer.Typer(
    name="fairreprogram",
    help=(
        "Fairness reprogramming: tune a small input trigger that makes a frozen classifier "
        "fairer, without touching its weights."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fairreprogram {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Fairness reprogramming of frozen classifiers."""


def _parse_pairs(pairs: list[str] | None, argument: str) -> dict[str, Any]:
    """Parse ``key=value`` options; values are read as JSON when they parse, else as text."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not valid; expected KEY=VALUE.", param_hint=argument)
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def _parse_sizes(text: str, argument: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not valid; expected comma-separated integers such as 64,64.", param_hint=argument
        ) from None
    return sizes


def _fail(error: Exception) -> None:
    typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _print_split(metrics: dict[str, Any], split: str = "test") -> None:
    from fairreprogram.experiments import format_table

    typer.echo(format_table({split: metrics[split]["overall"]}, TABLE_KEYS))


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output directory for summary.json, triggers and plot.")] = Path(
        "demo-output"
    ),
    task: Annotated[
        str,
        typer.Option(help="tabular (arrests data, MLP) or image (coloured MNIST digits, ResNet-20)."),
    ] = "tabular",
    seed: Annotated[int, typer.Option(help="Seed of splits, initialisation and shuffling.")] = 0,
    epochs: Annotated[int | None, typer.Option(help="Override the epoch budgets (quick checks).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Run a demo on embedded data (no download).

    Trains a base model, reports its bias, tunes a demographic-parity and an
    equalized-odds trigger, prints a before/after table on the test split and writes
    OUT/summary.json, OUT/trigger_dp and OUT/trigger_eo, plus OUT/demo.png (tabular:
    scikit-lego's arrests data, mask-and-offset triggers) or OUT/trigger.png (image:
    coloured digits whose colour is a shortcut in training, border triggers).
    """
    from fairreprogram.experiments import DEMO_KEYS, format_table, run_demo

    try:
        summary = run_demo(out=out, task=task, seed=seed, progress=not quiet, epochs=epochs)
    except (ValueError, ImportError) as error:
        _fail(error)
    typer.echo(format_table(summary["models"], DEMO_KEYS))
    typer.echo(
        f"\nwrote {out / 'summary.json'}, {out / summary['plot']}, {out / 'trigger_dp'}, "
        f"{out / 'trigger_eo'} in {summary['wall_time_s']:.0f} s"
    )


_DATA_HELP = (
    "Data spec. Tabular: 'arrests', 'adult:DIR', 'compas:PATH', 'csv:PATH' (or a path ending in "
    ".csv). Images: 'celeba:DIR' (or a .h5 file), 'images:CSV' (image files listed in a CSV) "
    "or 'digits' (coloured MNIST digits)."
)


def _data_section(data: str, options: dict[str, Any]) -> dict[str, Any]:
    """The ``data`` section of a run: the spec plus the options that were given."""
    return {"spec": data, **{k: v for k, v in options.items() if v is not None}}


def _single(values: list[str] | None) -> str | list[str] | None:
    if not values:
        return None
    return values[0] if len(values) == 1 else list(values)


@app.command("train-base")
def train_base(
    data: Annotated[str, typer.Option(help=_DATA_HELP)],
    out: Annotated[Path, typer.Option(help="Run directory to write.")],
    target: Annotated[
        list[str] | None,
        typer.Option(help="Target column or attribute; repeat for several (CelebA: 2^n classes)."),
    ] = None,
    sensitive: Annotated[
        list[str] | None,
        typer.Option(help="Sensitive column or attribute; repeat for intersectional groups."),
    ] = None,
    features: Annotated[
        list[str] | None, typer.Option(help="Tabular: feature column; repeat. Default: every other column.")
    ] = None,
    positive_label: Annotated[
        str | None, typer.Option(help="Tabular: target value of the positive class (CSV data).")
    ] = None,
    include_sensitive: Annotated[
        bool | None,
        typer.Option(help="Tabular: also feed the sensitive columns to the model (default: yes)."),
    ] = None,
    image_size: Annotated[
        int | None, typer.Option(help="Images: side of the square images the model sees (default 32).")
    ] = None,
    tune_fraction: Annotated[
        float | None,
        typer.Option(help="CelebA: share of the training split held out as the trigger's tuning set."),
    ] = None,
    tune_size: Annotated[
        int | None, typer.Option(help="CelebA: size of the tuning set as a count (overrides the fraction).")
    ] = None,
    text_col: Annotated[
        str | None, typer.Option(help="Text: the column of the texts (makes a CSV/TSV a text data set).")
    ] = None,
    label_col: Annotated[str | None, typer.Option(help="Text: the label column (default 'label').")] = None,
    identity_terms: Annotated[
        Path | None,
        typer.Option(
            help="Text: a file of identity terms (one per line); the sensitive attribute is whether a text "
            "mentions any of them (whole words, any case). Instead of --sensitive."
        ),
    ] = None,
    split_col: Annotated[
        str | None, typer.Option(help="Text: a column of official splits (train / dev or val / test).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Text: a Hugging Face model folder (default: the offline all-MiniLM-L6-v2)."),
    ] = None,
    max_length: Annotated[
        int | None, typer.Option(help="Text: cut texts to this many tokens (default 128); trigger extra.")
    ] = None,
    data_option: Annotated[
        list[str] | None,
        typer.Option(help="Any other loader option KEY=VALUE (repeat), e.g. cache_dir=/tmp/cache."),
    ] = None,
    arch: Annotated[
        str | None, typer.Option(help="Images: resnet18, resnet9 or resnet20 (default resnet18).")
    ] = None,
    hidden: Annotated[
        str | None, typer.Option(help="Tabular: hidden layer widths of the MLP (default 64,64).")
    ] = None,
    dropout: Annotated[float | None, typer.Option(help="Tabular: dropout after each hidden layer.")] = None,
    epochs: Annotated[int, typer.Option(help="Maximum epochs.")] = ERM_DEFAULTS.epochs,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = ERM_DEFAULTS.batch_size,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = ERM_DEFAULTS.lr,
    class_weight: Annotated[
        str | None, typer.Option(help="'balanced' to weight the loss by inverse class frequency.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of splits and training.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace a finished run in OUT.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Train a base model with ERM on the train split and write a run directory.

    Tabular data gets an MLP (--hidden, --dropout), image data a ResNet (--arch) and
    text data (--text-col) a Hugging Face classifier fine-tuned from --model. Options
    that do not apply to the data are refused with the list of those that do.
    """
    from fairreprogram.experiments import train_base_run

    text = {
        "text_col": text_col,
        "label_col": label_col,
        "sensitive_col": _single(sensitive) if text_col is not None else None,
        "identity_terms": str(identity_terms) if identity_terms is not None else None,
        "split_col": split_col,
        "tokenizer": model,
        "max_length": max_length,
    }
    section = _data_section(
        data,
        {
            "seed": seed,
            **text,
            "target": _single(target),
            "sensitive": _single(sensitive) if text_col is None else None,
            "features": features or None,
            "positive_label": positive_label,
            "include_sensitive": include_sensitive,
            "image_size": image_size,
            "tune_fraction": tune_fraction,
            "tune_size": tune_size,
            **_parse_pairs(data_option, "--data-option"),
        },
    )
    base_options = {
        "arch": arch,
        "hidden_sizes": _parse_sizes(hidden, "--hidden") if hidden is not None else None,
        "dropout": dropout,
        "model": model,
    }
    train = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "class_weight": class_weight}
    if class_weight is not None:
        train["accuracy_metric"] = "balanced_accuracy"
    try:
        metrics = train_base_run(
            data=section,
            out=out,
            model_options={k: v for k, v in base_options.items() if v is not None},
            train_options=train,
            overwrite=overwrite,
            progress=not quiet,
        )
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError, DirectoryLocked) as error:
        _fail(error)
    _print_split(metrics)
    typer.echo(f"\nwrote {out}")


def _trigger_options(kind: str | None, size: float | None, pairs: list[str] | None) -> dict[str, Any]:
    from fairreprogram.triggers import get_trigger_class

    options = _parse_pairs(pairs, "--trigger-option")
    if size is None:
        return options
    if kind is None:
        raise typer.BadParameter("--trigger-size needs --trigger (border, patch, sparse, soft, hard, ...).")
    try:
        option = get_trigger_class(kind).size_option
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--trigger") from None
    if option is None:
        raise typer.BadParameter(
            f"{size!r} is not valid for trigger {kind!r}, which has no size; use --trigger-option.",
            param_hint="--trigger-size",
        )
    options[option] = int(size) if float(size).is_integer() and option != "fraction" else size
    return options


def _word_options(allowed: Path | None, init: str | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if allowed is not None:
        if not allowed.is_file():
            raise typer.BadParameter(
                f"{str(allowed)!r} is not a file; expected a word list.", param_hint="--allowed-words"
            )
        options["allowed_words"] = [w.strip() for w in allowed.read_text().splitlines() if w.strip()]
    if init is not None:
        options["init_words"] = [w.strip() for w in init.split(",") if w.strip()]
    return options


@app.command()
def reprogram(
    base: Annotated[
        Path, typer.Option(help="A finished train-base run, or a sweep base model (SWEEP/bases/base-s0).")
    ],
    out: Annotated[Path, typer.Option(help="Run directory to write.")],
    trigger: Annotated[
        str | None,
        typer.Option(
            help=f"Trigger kind: {', '.join(available_triggers())} "
            "(default: mask_offset for tabular data, border for images, soft for text)."
        ),
    ] = None,
    trigger_size: Annotated[
        float | None,
        typer.Option(
            help="Size of the trigger: border width (border), patch side (patch), share of pixels (sparse) "
            "or number of tokens (soft, hard, embedding)."
        ),
    ] = None,
    num_tokens: Annotated[
        int | None,
        typer.Option(help="Text: trigger tokens of soft, hard and embedding triggers (default 5)."),
    ] = None,
    allowed_words: Annotated[
        Path | None,
        typer.Option(help="Text: a file of the words (one per line) the trigger may use."),
    ] = None,
    init_words: Annotated[
        str | None, typer.Option(help="Text: comma-separated words to start the trigger from.")
    ] = None,
    trigger_option: Annotated[
        list[str] | None,
        typer.Option(
            help="Trigger option KEY=VALUE (repeat), e.g. corner=top_left, insert=before_sep, mask_init=1."
        ),
    ] = None,
    criterion: Annotated[
        str, typer.Option(help="demographic_parity (dp) or equalized_odds (eo).")
    ] = _DEFAULTS.criterion,
    lam: Annotated[float, typer.Option(help="Adversary weight lambda >= 0.")] = _DEFAULTS.lam,
    epochs: Annotated[int, typer.Option(help="Maximum epochs.")] = _DEFAULTS.epochs,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = _DEFAULTS.batch_size,
    lr: Annotated[float, typer.Option(help="Trigger learning rate (Adam).")] = _DEFAULTS.lr,
    adversary_lr: Annotated[
        float, typer.Option(help="Adversary learning rate (Adam).")
    ] = _DEFAULTS.adversary_lr,
    project: Annotated[
        bool, typer.Option(help="Project the adversary gradient out of the task gradient.")
    ] = _DEFAULTS.project,
    selection: Annotated[
        str, typer.Option(help="Model selection: min_bias, worst_group_accuracy, accuracy or last.")
    ] = _DEFAULTS.selection,
    max_accuracy_drop: Annotated[
        float,
        typer.Option(
            help="Largest accepted drop of validation accuracy under min_bias selection (0.01 = one point)."
        ),
    ] = _DEFAULTS.max_accuracy_drop,
    accuracy_metric: Annotated[
        str,
        typer.Option(
            help="accuracy or balanced_accuracy: what min_bias's floor and accuracy selection use "
            "(balanced_accuracy for imbalanced labels, where predicting one class meets a plain floor)."
        ),
    ] = _DEFAULTS.accuracy_metric,
    patience: Annotated[
        int, typer.Option(help="Early-stopping patience in validations (0: off).")
    ] = _DEFAULTS.patience,
    validate_every: Annotated[
        int, typer.Option(help="Validate every this many epochs (and always after the last).")
    ] = _DEFAULTS.validate_every,
    class_weight: Annotated[
        str | None, typer.Option(help="'balanced' to weight the task loss by inverse class frequency.")
    ] = None,
    mixed_precision: Annotated[str, typer.Option(help="no, bf16 or fp16.")] = _DEFAULTS.mixed_precision,
    seed: Annotated[int, typer.Option(help="Seed.")] = _DEFAULTS.seed,
    overwrite: Annotated[bool, typer.Option(help="Replace a finished run in OUT.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Tune a fairness trigger for the frozen model of a train-base run (on its tune split).

    An interrupted run resumes from its last epoch when called again with the same
    options.
    """
    from fairreprogram.experiments import reprogram_run

    train = {
        "criterion": criterion,
        "lam": lam,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "adversary_lr": adversary_lr,
        "project": project,
        "selection": selection,
        "max_accuracy_drop": max_accuracy_drop,
        "accuracy_metric": accuracy_metric,
        "patience": patience,
        "validate_every": validate_every,
        "class_weight": class_weight,
        "mixed_precision": mixed_precision,
        "seed": seed,
    }
    try:
        metrics = reprogram_run(
            base=base,
            out=out,
            trigger=trigger,
            trigger_options={
                **_trigger_options(
                    trigger, trigger_size if num_tokens is None else num_tokens, trigger_option
                ),
                **_word_options(allowed_words, init_words),
            },
            train_options=train,
            overwrite=overwrite,
            progress=not quiet,
        )
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError, DirectoryLocked) as error:
        _fail(error)
    _print_split(metrics)
    typer.echo(f"\nwrote {out}")


@app.command()
def evaluate(
    base: Annotated[
        Path, typer.Option(help="A finished train-base run, or a sweep base model (SWEEP/bases/base-s0).")
    ],
    trigger: Annotated[
        Path | None, typer.Option(help="A saved trigger directory or a reprogram run directory.")
    ] = None,
    split: Annotated[str, typer.Option(help="train, tune, val or test.")] = "test",
    bootstrap: Annotated[
        int | None,
        typer.Option(help="Bootstrap resamples for 95% intervals (default: none; 1000 with --compare)."),
    ] = None,
    compare: Annotated[
        bool,
        typer.Option(
            "--compare",
            help="With --trigger: compare with the bare base model; paired intervals of the change.",
        ),
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the full result as JSON.")
    ] = None,
) -> None:
    """Evaluate a base model, optionally behind a trigger, on one split: accuracy and bias.

    With --compare, the base model is evaluated with and without the trigger on the same
    rows; each bootstrap resample scores both, so the interval is that of the change.
    """
    from fairreprogram.experiments import compare_run, evaluate_run, format_table
    from fairreprogram.utils import atomic_write_json

    if compare and trigger is None:
        raise typer.BadParameter("--compare needs --trigger (the trigger to compare with the bare model).")
    if bootstrap is not None and bootstrap < 0:
        raise typer.BadParameter(
            f"{bootstrap} is negative; expected 0 or more resamples.", param_hint="--bootstrap"
        )
    try:
        if compare and trigger is not None:
            result: Any = compare_run(
                base=base, trigger=trigger, split=split, n_bootstrap=1000 if bootstrap is None else bootstrap
            )
        else:
            result = evaluate_run(base=base, trigger=trigger, split=split, n_bootstrap=bootstrap or 0)
    except (ValueError, TypeError, FileNotFoundError) as error:
        _fail(error)
    if compare:
        _print_comparison(result, split)
    else:
        typer.echo(format_table({split: result.overall}, TABLE_KEYS))
        typer.echo("\nper group:\n" + result.by_group.to_string())
        for key, (low, high) in result.confidence_intervals.items():
            if key in TABLE_KEYS:
                typer.echo(f"{key}: {result.overall[key]:.4f} [{low:.4f}, {high:.4f}]")
    if json_out is not None:
        atomic_write_json(json_out, result.to_dict())
        typer.echo(f"wrote {json_out}")


def _print_comparison(result: Any, split: str) -> None:
    level = f"{result.confidence_level:.0%}"
    rows = [
        (
            "metric",
            "base",
            "with trigger",
            "change",
            f"{level} interval of the change" if result.n_bootstrap else "",
        )
    ]
    for key in TABLE_KEYS:
        if key not in result.difference:
            continue
        interval = ""
        if key in result.confidence_intervals:
            low, high = result.confidence_intervals[key]
            interval = f"[{low:+.4f}, {high:+.4f}]" + (" *" if result.excludes_zero(key) else "")
        rows.append(
            (
                key,
                f"{result.before[key]:.4f}",
                f"{result.after[key]:.4f}",
                f"{result.difference[key]:+.4f}",
                interval,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    rows_used = f"{result.before['n']} rows of the {split} split"
    if result.n_bootstrap:
        typer.echo(f"* the interval excludes 0 ({result.n_bootstrap} paired resamples of {rows_used})")
    else:
        typer.echo(f"({rows_used}; no intervals with --bootstrap 0)")


@app.command()
def sweep(
    config: Annotated[Path, typer.Argument(help="Sweep config (.yaml, .yml or .json); see the README.")],
    out: Annotated[Path | None, typer.Option(help="Sweep directory (default: sweeps/<name>).")] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Parallel trials: local worker processes (1 runs them in this process) or Ray tasks."
        ),
    ] = 1,
    backend: Annotated[str, typer.Option(help="local (worker processes) or ray (needs the ray extra).")] = (
        "local"
    ),
    address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster address, e.g. ray://host:10001 or auto (default: start a local Ray instance)."
        ),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="Torch threads per worker (default: CPU cores / workers).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Run every trial of a sweep config; finished runs are skipped, interrupted ones resume.

    Writes OUT/sweep.json, OUT/bases/ (one shared base model per seed) and OUT/runs/
    (one run directory per trial); then run `fairreprogram report OUT`. A failing trial
    does not stop the others: the sweep ends with an error naming it, and its traceback
    in OUT/failures.log.
    """
    from fairreprogram.experiments import SweepFailed, load_sweep_config, run_sweep

    try:
        parsed = load_sweep_config(config)
        target = out if out is not None else Path("sweeps") / parsed.name
        summary = run_sweep(
            parsed,
            out=target,
            workers=workers,
            backend=backend,
            address=address,
            threads_per_worker=threads,
            progress=not quiet,
        )
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, ConnectionError) as error:
        _fail(error)
    except (SweepFailed, DirectoryLocked) as error:
        _fail(error)
    typer.echo(
        f"{summary['trials']} trials ({summary['ran']} run now) in {summary['wall_time_s']:.0f} s; "
        f"wrote {target}. Next: fairreprogram report {target}"
    )


@app.command()
def runs(
    directory: Annotated[
        Path, typer.Argument(help="A sweep directory, or any folder holding run directories.")
    ],
) -> None:
    """List the runs under DIRECTORY as a table (test metrics; degenerate runs flagged)."""
    from fairreprogram.experiments import collect_runs

    try:
        table = collect_runs(directory, include_unfinished=True)
    except (ValueError, FileNotFoundError) as error:
        _fail(error)
    columns = [
        "run_id",
        "status",
        "method",
        "criterion",
        "lam",
        "seed",
        "tune_fraction",
        "accuracy",
        "dp_gap",
        "eo_gap",
        "worst_group_accuracy",
        "degenerate",
    ]
    shown = table[columns].copy()
    shown["criterion"] = shown["criterion"].map({"demographic_parity": "dp", "equalized_odds": "eo"})
    shown["degenerate"] = shown["degenerate"].map(lambda reason: "DEGENERATE: " + reason if reason else "")
    typer.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-"))


@app.command()
def report(
    directory: Annotated[Path, typer.Argument(help="A sweep directory (or any folder of run directories).")],
    out: Annotated[Path | None, typer.Option(help="Where to write report.html and report.md.")] = None,
    matched_accuracy_drop: Annotated[
        float, typer.Option(help="Compare bias at the base accuracy minus this (0.01 = one point).")
    ] = 0.01,
    group_run: Annotated[
        str | None,
        typer.Option(help="Run id whose per-group rates are shown (default: the best trigger run)."),
    ] = None,
) -> None:
    """Write a self-contained HTML report (plots embedded) and a markdown summary."""
    from fairreprogram.experiments import write_report

    try:
        html_path, md_path = write_report(
            directory, out=out, matched_accuracy_drop=matched_accuracy_drop, group_run=group_run
        )
    except (ValueError, FileNotFoundError) as error:
        _fail(error)
    typer.echo(f"wrote {html_path} and {md_path}")


def main() -> None:
    """Entry point of the ``fairreprogram`` console script."""
    app()
