"""A self-contained HTML report and a markdown summary of a sweep directory.

:func:`write_report` reads every finished run under a directory
(:func:`~fairreprogram.experiments.collect_runs`), aggregates seeds and compares
methods (:func:`~fairreprogram.experiments.summarize`) and writes two files:

- ``report.html``: one file with inline CSS and the plots embedded as base64 PNG; it
  loads nothing from elsewhere and needs no JavaScript.
- ``report.md``: the same tables without images, for pull requests and terminals.

Both are built from the same list of sections, so their tables never disagree.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import math
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from fairreprogram._version import __version__
from fairreprogram.engine import Criterion
from fairreprogram.experiments._analysis import collect_runs, efficiency_families, summarize, transfer_summary
from fairreprogram.experiments._execution import SWEEP_NAME
from fairreprogram.experiments._plots import (
    plot_efficiency,
    plot_group_rates,
    plot_tradeoff,
    plot_transfer,
    plot_trigger,
)
from fairreprogram.experiments._rundir import read_run
from fairreprogram.experiments._runs import DATA_NAME
from fairreprogram.experiments._sweep_config import BASELINE_METHODS
from fairreprogram.experiments._tasks import build_task
from fairreprogram.experiments._trials import TRANSFER_NAME
from fairreprogram.triggers import Trigger
from fairreprogram.utils import atomic_write_text, check_non_negative, read_json

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["REPORT_HTML", "REPORT_MARKDOWN", "write_report"]

REPORT_HTML = "report.html"
REPORT_MARKDOWN = "report.md"

_UNKNOWN_GROUP_RUN = (
    "group_run={value!r} is not a finished run under {path}; expected a run id such as {known} "
    "({count} runs; `fairreprogram runs {path}` lists them)."
)
_TRIGGER_UNREADABLE = "The trigger of this run could not be loaded, so it is not drawn: {error}"
_DEGENERATE_FLAG = "⚠ degenerate: {reason}"
_Z_FLAG = "uses Z at inference"
_UNTUNED_FLAG = "untuned: epoch 0 kept"
_MISSING = "–"

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 78rem;
       padding: 0 1rem; color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; border-bottom: 1px solid #ddd; margin-top: 2.2rem; }
nav a { margin-right: 0.9rem; } p.caption { font-weight: 600; margin-bottom: 0.3rem; }
div.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.82rem; margin: 0.4rem 0 1rem; }
th, td { border: 1px solid #d4d4d4; padding: 0.25rem 0.5rem; text-align: left; white-space: nowrap; }
th { background: #f2f2f2; } td.num { text-align: right; } td.wrap { white-space: normal; min-width: 14rem; }
tr.degenerate td { background: #fdecea; color: #7a1c12; }
img { max-width: 100%; height: auto; display: block; margin: 0.6rem 0; border: 1px solid #eee; }
pre { background: #f6f6f6; padding: 0.7rem; overflow: auto; max-height: 28rem; font-size: 0.8rem; }
"""


@dataclasses.dataclass
class _Table:
    headers: list[str]
    rows: list[list[str]]
    flagged: list[bool] = dataclasses.field(default_factory=list)
    caption: str = ""
    wrap: int = -1  # index of a column of long text that may wrap (HTML)


@dataclasses.dataclass
class _Section:
    """A titled list of blocks, rendered in order: ``("text" | "image" | "table" | "code", payload)``."""

    title: str
    blocks: list[tuple[str, Any]] = dataclasses.field(default_factory=list)

    def text(self, value: str) -> None:
        self.blocks.append(("text", value))

    def image(self, alt: str, fig: Figure) -> None:
        self.blocks.append(("image", (alt, _png(fig))))

    def table(self, value: _Table) -> None:
        self.blocks.append(("table", value))

    def code(self, value: str) -> None:
        self.blocks.append(("code", value))


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return _MISSING
    return f"{float(value):.{digits}f}"


def _text(value: Any) -> str:
    """A table cell for a value that may be missing (None or NaN in a pandas frame)."""
    return value if isinstance(value, str) else ""


def _count(value: Any) -> str:
    return _MISSING if value is None or pd.isna(value) else f"{float(value):,.0f}"


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _flags(row: Mapping[str, Any]) -> str:
    flags = [_DEGENERATE_FLAG.format(reason=row["degenerate"])] if row["degenerate"] else []
    flags += [_UNTUNED_FLAG] if row.get("untuned") else []
    return "; ".join([*flags, *([_Z_FLAG] if row.get("uses_z_at_inference") else [])])


_METRIC_COLUMNS = (
    ("accuracy", "accuracy"),
    ("balanced_accuracy", "balanced acc."),
    ("dp_gap", "DP gap"),
    ("eo_gap", "EO gap"),
    ("dp_gap_paper", "DP gap (paper)"),
    ("eo_gap_paper", "EO gap (paper)"),
    ("fpr_gap", "FPR gap"),
    ("worst_group_accuracy", "worst-group acc."),
)
_COST_COLUMNS = ("trainable params", "wall time (s)", "examples/s", "peak memory (MB)")


def _config_table(rows: pd.DataFrame, caption: str) -> _Table:
    headers = ["method", "flags", "λ", "tune fraction", "options", "seeds", *(h for _, h in _METRIC_COLUMNS)]
    table = _Table([*headers, *_COST_COLUMNS], [], caption=caption, wrap=1)
    for row in rows.to_dict("records"):
        lam = _MISSING if pd.isna(row["lam"]) else f"{row['lam']:g}"
        cells = [row["method"], _flags(row), lam, f"{row['tune_fraction']:g}", _text(row["options"])]
        cells.append(str(row["seeds"]))
        if row["seeds"] > 1:
            cells += [f"{_num(row[k])} ± {_num(row[k + '_std'])}" for k, _ in _METRIC_COLUMNS]
        else:  # one seed has no spread to show
            cells += [_num(row[k]) for k, _ in _METRIC_COLUMNS]
        cells += [_count(row["trainable_parameters"]), _num(row["wall_time_s"], 2)]
        memory = _count(row["peak_memory_mb"])
        bound = row.get("peak_memory_bound", True) and memory != _MISSING
        cells += [_count(row["examples_per_second"]), f"≤ {memory}" if bound else memory]
        table.rows.append(cells)
        table.flagged.append(bool(row["degenerate"]))
    if not any(row[4] for row in table.rows):  # no options in any row: drop the column
        table.headers.pop(4)
        for row in table.rows:
            row.pop(4)
    return table


def _results_section(summary: Mapping[str, Any]) -> _Section:
    configs = summary["configs"].sort_values(["method", "lam", "tune_fraction"], na_position="first")
    section = _Section("Results per method and criterion")
    section.text(
        "Test metrics, mean ± standard deviation over seeds (the value alone for one seed). Gaps in "
        "two conventions: fairlearn's (largest minus smallest group rate) and the paper's (sum of "
        "deviations). Rows marked "
        f"{_DEGENERATE_FLAG.format(reason='…')!r} predict one class for everyone or for a whole group "
        "in at least one seed; they are left off every front. The threshold optimizer needs the "
        f"sensitive attribute Z at inference ({_Z_FLAG!r}). Peak memory is the resident peak of "
        "the process while the run ran (libraries and loaded data included); '≤' marks the worker "
        "process's peak so far, over earlier runs too (runs recorded before per-run readings, or "
        "where the OS cannot reset it), an upper bound."
    )
    for criterion in Criterion:
        rows = configs[configs["criterion"] == criterion.value]
        if len(rows):
            section.table(_config_table(rows, criterion.value.replace("_", " ")))
    rest = configs[configs["criterion"].isna()]
    if len(rest):
        section.table(_config_table(rest, "no criterion (base model, ERM)"))
    return section


def _trigger_words_section(runs: pd.DataFrame) -> list[_Section]:
    """The words of every hard text trigger, per run (test metrics beside them)."""
    if "trigger_text" not in runs:
        return []
    hard = runs[runs["trigger_text"].fillna("") != ""].sort_values(["criterion", "lam", "seed", "run_id"])
    if hard.empty:
        return []
    section = _Section("Hard trigger words")
    section.text("The tokens each hard text trigger chose, as the tokenizer writes them; test split.")
    table = _Table(["run", "criterion", "λ", "seed", "words", "accuracy", "DP gap", "EO gap"], [], wrap=4)
    for row in hard.to_dict("records"):
        lam = _MISSING if pd.isna(row["lam"]) else f"{row['lam']:g}"
        names = [row["run_id"], _text(row["criterion"]), lam, str(row["seed"]), row["trigger_text"]]
        table.rows.append([*names, *(_num(row[k]) for k in ("accuracy", "dp_gap", "eo_gap"))])
        table.flagged.append(bool(row["degenerate"]))
    section.table(table)
    return [section]


def _degenerate_section(runs: pd.DataFrame) -> _Section:
    bad = runs[runs["degenerate"] != ""].sort_values("run_id")
    section = _Section("Degenerate runs")
    if bad.empty:
        section.text("No run is degenerate.")
        return section
    section.text(f"{len(bad)} of {len(runs)} runs are degenerate; their configurations are flagged above.")
    table = _Table(["run", "method", "criterion", "seed", "reason"], [], wrap=4)
    for row in bad.to_dict("records"):
        table.rows.append(
            [row["run_id"], row["method"], _text(row["criterion"]), str(row["seed"]), row["degenerate"]]
        )
        table.flagged.append(True)
    section.table(table)
    return section


def _comparison_section(summary: Mapping[str, Any], drop: float) -> _Section:
    section = _Section("Comparison of methods")
    section.text(
        "Per criterion, over the seed means of configurations tuned on the whole tuning split. Bias at "
        f"matched accuracy: the lowest gap the front reaches at base accuracy − {drop:g}; accuracy at "
        "matched bias: the highest accuracy at a gap no larger than the matched bias."
    )
    seeds = ", ".join(map(str, summary.get("base_seeds", []))) or _MISSING
    for criterion in Criterion:
        part = summary[criterion.short]
        if not part["comparison"]:
            continue
        acc_ref, gap_ref = part["reference"]
        caption = (
            f"{criterion.value.replace('_', ' ')}: hypervolume reference (accuracy {_num(acc_ref)}, "
            f"{criterion.gap_key} {_num(gap_ref)}); matched accuracy {_num(part['matched_accuracy'])}, "
            f"matched bias {_num(part['matched_bias'])}; base model(s) of seed(s) {seeds}"
        )
        headers = ["method", "configs", "hypervolume", "bias at matched acc.", "acc. at matched bias"]
        table = _Table([*headers, "degenerate configs left off"], [], caption=caption)
        front_caption = f"{criterion.value.replace('_', ' ')}: Pareto front points (seed means)"
        fronts = _Table(["method", f"front (accuracy, {criterion.gap_key})"], [], caption=front_caption)
        for method, row in sorted(part["comparison"].items()):
            values = [row["bias_at_matched_accuracy"], row["accuracy_at_matched_bias"]]
            cells = [method, str(row["configs"]), _num(row["hypervolume"], 4), *map(_num, values)]
            table.rows.append([*cells, str(row["degenerate_configs"])])
            table.flagged.append(row["degenerate_configs"] == row["configs"])
            points = "; ".join(f"({_num(a)}, {_num(g)})" for a, g in part["fronts"].get(method, []))
            fronts.rows.append([method, points or "none (every configuration degenerate)"])
        section.table(table)
        section.table(fronts)
    constant = summary.get("base", {}).get("majority_accuracy", math.nan)
    matched = summary[Criterion.EQUALIZED_ODDS.short]["matched_accuracy"]  # the same for every criterion
    if constant >= matched:  # False when either is NaN
        section.text(
            f"Predicting the most frequent class for every test row scores accuracy {_num(constant)} "
            f"(mean over the base models' test splits), at or above the matched accuracy "
            f"{_num(matched)}, with every gap 0: on this data a floor on accuracy alone does not "
            "show that a fairer run still predicts the minority class. Read the balanced accuracy "
            "and the per-group rates beside the gaps."
        )
    return section


def _plot_sections(summary: Mapping[str, Any]) -> list[_Section]:
    tradeoff = _Section("Accuracy–fairness trade-off")
    tradeoff.text("Seed means per configuration; dashed lines: least-squares trend per method.")
    tradeoff.image("Accuracy against negative DP and EO gap per method", plot_tradeoff(summary))
    sections = [tradeoff]
    configs = summary["configs"]
    if ((configs["tune_fraction"] < 1.0) & configs["criterion"].notna()).any():
        efficiency = _Section("Data efficiency")
        efficiency.text(
            "Configurations of the same method and lambda tuned on shares of the tuning split; "
            "seed means with seed standard deviations."
        )
        efficiency.image("Gap and accuracy against the share of tuning data used", plot_efficiency(summary))
        efficiency.table(_efficiency_table(summary))
        sections.append(efficiency)
    return sections


def _efficiency_table(summary: Mapping[str, Any]) -> _Table:
    """Per family with shares of the tuning data: accuracy and gap against the base model's."""
    base = summary.get("base", {})
    headers = ["criterion", "method", "λ", "tune fraction", "tuning examples", "seeds", "accuracy"]
    headers += ["Δ accuracy", "gap", "Δ gap", "gap change"]
    table = _Table(headers, [], caption="Test split; Δ against the base model (seed means).")
    for criterion in Criterion:
        base_acc, base_gap = base.get("accuracy", math.nan), base.get(criterion.gap_key, math.nan)
        for _, method, rows in efficiency_families(summary["configs"], criterion):
            for row in rows.to_dict("records"):
                gap = row[criterion.gap_key]
                lam = _MISSING if pd.isna(row["lam"]) else f"{row['lam']:g}"
                cells = [criterion.short.upper(), method, lam, f"{row['tune_fraction']:g}"]
                examples = _count(row.get("tune_examples", math.nan))
                cells += [examples, str(row["seeds"]), _num(row["accuracy"])]
                change = (gap - base_gap) / base_gap if base_gap else math.nan
                cells += [_signed(row["accuracy"] - base_acc), _num(gap), _signed(gap - base_gap)]
                table.rows.append([*cells, _percent(change)])
                table.flagged.append(bool(row["degenerate"]))
    return table


def _signed(value: float, digits: int = 3) -> str:
    return _MISSING if not math.isfinite(value) else f"{value:+.{digits}f}"


def _percent(value: float) -> str:
    return _MISSING if not math.isfinite(value) else f"{100 * value:+.1f}%"


def _transfer_section(runs: pd.DataFrame) -> list[_Section]:
    transfers = {
        row["run_id"]: read_json(Path(row["path"]) / TRANSFER_NAME)
        for row in runs.to_dict("records")
        if (Path(row["path"]) / TRANSFER_NAME).is_file()
    }
    if not transfers:
        return []
    section = _Section("Transfer of triggers to other base models")
    section.text(
        "Each trigger evaluated, unchanged, on the base models of the other seeds (and on any "
        "transfer-target architectures); the share is the target's bias reduction over the source's "
        "(n/a when the source reduced no bias)."
    )
    section.image("Share of bias reduction kept per trial and target", plot_transfer(transfers))
    summary = _Table(
        ["criterion", "target", "pairs", "median share kept", "mean share kept", "pairs with share >= 0.7"],
        [],
        caption="Summary over (trial, target) pairs whose source cut its gap by at least 0.01.",
    )
    for row in transfer_summary(transfers).to_dict("records"):
        summary.rows.append(
            [
                str(row["criterion"]),
                str(row["target"]),
                str(row["pairs"]),
                _num(row["median_share"]),
                _num(row["mean_share"]),
                str(row["pairs_at_least_0.7"]),
            ]
        )
    section.table(summary)
    headers = ["trial", "criterion", "source", "target", "source reduction", "target gap", "gap with trigger"]
    table = _Table([*headers, "target acc.", "acc. with trigger", "share kept"], [])
    for trial, record in sorted(transfers.items()):
        gap = record.get("gap", "")
        for target, result in sorted(record.get("targets", {}).items()):
            base, moved = result.get("base", {}), result.get("with_trigger", {})
            values = [record.get("source_reduction"), base.get(gap), moved.get(gap), base.get("accuracy")]
            values += [moved.get("accuracy"), result.get("share_of_reduction_kept")]
            names = [trial, str(record.get("criterion", "")), str(record.get("source", "")), target]
            table.rows.append([*names, *map(_num, values)])
    section.table(table)
    return [section]


def _gap_of(row: Mapping[str, Any]) -> float:
    return float(row[Criterion(row["criterion"]).gap_key])


def _lowest_gap(frame: pd.DataFrame) -> str:
    return str(frame.loc[frame.apply(_gap_of, axis=1).idxmin(), "run_id"])


def _default_group_run(runs: pd.DataFrame, drop: float) -> tuple[str, str]:
    """The run whose groups the report shows, and why it was chosen."""
    bases = runs[runs["method"] == "base"]
    base_acc = bases.groupby("seed")["accuracy"].mean()
    usable = (runs["degenerate"] == "") & runs["criterion"].notna()
    triggers = runs[usable & ~runs["method"].isin([*BASELINE_METHODS, "base"])]
    if triggers.empty:
        chosen = bases if len(bases) else runs
        return str(chosen.iloc[0]["run_id"]), "there is no non-degenerate trigger run"
    if base_acc.empty:
        best = _lowest_gap(triggers)
        return best, "the non-degenerate trigger run with the lowest test gap (no base model found)"
    reference = triggers["seed"].map(base_acc).fillna(base_acc.mean())
    close = triggers[triggers["accuracy"] >= reference - drop]
    if close.empty:
        best = str(triggers.loc[(triggers["accuracy"] - reference).idxmax(), "run_id"])
        return best, f"no trigger run is within {drop:g} of its base model's accuracy; this one comes closest"
    why = "the non-degenerate trigger run with the lowest test gap of its criterion among those within"
    return _lowest_gap(close), f"{why} {drop:g} of their base model's accuracy"


def _feature_names(run: Path, sweep: Mapping[str, Any]) -> list[str] | None:
    if (run / DATA_NAME).is_file():
        return read_json(run / DATA_NAME).get("feature_names")
    data = sweep.get("config", {}).get("data")
    if not data:
        return None
    try:
        return build_task(data).feature_names()
    except (OSError, ValueError, KeyError, ImportError):
        # The data may not be where the sweep found it; the plot then labels features by index.
        return None


def _add_trigger_plot(section: _Section, run: Path, sweep: Mapping[str, Any]) -> None:
    if not (run / "trigger").is_dir():
        return
    try:
        trigger = Trigger.from_pretrained(run / "trigger")
    except (ValueError, FileNotFoundError) as error:  # e.g. a trigger kind whose module is not imported
        section.text(_TRIGGER_UNREADABLE.format(error=error))
        return
    names = _feature_names(run, sweep)
    shape = trigger.input_shape()
    usable = names if names is not None and shape is not None and len(names) == shape[-1] else None
    section.text(
        f"The learned {trigger.kind} trigger of this run ({trigger.num_trainable_parameters()} parameters):"
    )
    section.image(
        f"Learned {trigger.kind} trigger of run {run.name}", plot_trigger(trigger, feature_names=usable)
    )


def _group_section(root: Path, runs: pd.DataFrame, *, group_run: str | None, drop: float) -> _Section:
    if group_run is None:
        run_id, why = _default_group_run(runs, drop)
    elif group_run in set(runs["run_id"]):
        run_id, why = group_run, "chosen with group_run"
    else:
        known = sorted(runs["run_id"])[:5]
        raise ValueError(_UNKNOWN_GROUP_RUN.format(value=group_run, path=root, known=known, count=len(runs)))
    path = Path(runs.loc[runs["run_id"] == run_id, "path"].iloc[0])
    metrics = read_run(path)[1] or {}
    section = _Section(f"Per-group rates of run {run_id}")
    section.text(f"Run {run_id} ({why}); test split.")
    section.image(
        f"Per-group selection rate, TPR, FPR and accuracy of run {run_id}",
        plot_group_rates(metrics, title=run_id),
    )
    table = _Table(["group", "count", "selection rate", "TPR", "FPR", "FNR", "accuracy"], [])
    for row in metrics.get("test", {}).get("by_group", []):
        keys = ("selection_rate", "tpr", "fpr", "fnr", "accuracy")
        table.rows.append(
            [str(row.get("group")), _count(row.get("count")), *(_num(row.get(k)) for k in keys)]
        )
    section.table(table)
    _add_trigger_plot(section, path, _read_sweep(root))
    return section


def _reproduce_section(root: Path, sweep: Mapping[str, Any]) -> _Section:
    section = _Section("Reproduce")
    section.text(f"Report written by fairreprogram {__version__}.")
    target = shlex.quote(str(root))
    if sweep:
        section.text(f"Sweep run with fairreprogram {sweep.get('library_version', 'unknown')}; its config:")
        section.code(json.dumps(sweep.get("config", {}), indent=2, sort_keys=True))
        recorded = str(sweep.get("command", ""))
        if recorded.split()[1:2] == ["sweep"]:
            section.code(recorded)
        else:
            section.text(
                f"The sweep was started from Python (recorded command {recorded!r}); to rerun it from "
                "the command line, save the config above as CONFIG.json and run:"
            )
            section.code(f"fairreprogram sweep CONFIG.json --out {target}")
    section.code(f"fairreprogram report {target}")
    return section


def _slug(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")


def _html_cell(text: str, *, wrap: bool) -> str:
    numeric = text[:1].isdigit() or (text[:1] in "-–" and text[1:2].isdigit()) or text == _MISSING
    css = "wrap" if wrap else "num" if numeric else ""
    return f'<td class="{css}">{html.escape(text)}</td>' if css else f"<td>{html.escape(text)}</td>"


def _html_table(table: _Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    body = []
    for i, row in enumerate(table.rows):
        flagged = i < len(table.flagged) and table.flagged[i]
        cells = "".join(_html_cell(c, wrap=j == table.wrap) for j, c in enumerate(row))
        body.append(f'<tr class="degenerate">{cells}</tr>' if flagged else f"<tr>{cells}</tr>")
    caption = f'<p class="caption">{html.escape(table.caption)}</p>' if table.caption else ""
    rows = "".join(body)
    table_html = f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    return f'{caption}<div class="scroll">{table_html}</div>'


def _html_block(kind: str, payload: Any) -> str:
    if kind == "image":
        alt, data = payload
        return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
    if kind == "table":
        return _html_table(payload)
    if kind == "code":
        return f"<pre>{html.escape(payload)}</pre>"
    return f"<p>{html.escape(payload)}</p>"


def _render_html(title: str, sections: list[_Section]) -> str:
    nav = " ".join(f'<a href="#{_slug(s.title)}">{html.escape(s.title)}</a>' for s in sections)
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>",
        f"<h1>{html.escape(title)}</h1>\n<nav>{nav}</nav>",
    ]
    for section in sections:
        parts.append(f'<section id="{_slug(section.title)}">\n<h2>{html.escape(section.title)}</h2>')
        parts.extend(_html_block(kind, payload) for kind, payload in section.blocks)
        parts.append("</section>")
    parts.append("</body>\n</html>\n")
    return "\n".join(parts)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(table: _Table) -> str:
    lines = [f"**{table.caption}**", ""] if table.caption else []
    lines.append("| " + " | ".join(_md_cell(h) for h in table.headers) + " |")
    lines.append("|" + "---|" * len(table.headers))
    lines.extend("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows)
    return "\n".join(lines)


def _render_markdown(title: str, sections: list[_Section]) -> str:
    parts = [f"# {title}", "", f"The plots are in {REPORT_HTML}, next to this file."]
    for section in sections:
        parts += ["", f"## {section.title}"]
        for kind, payload in section.blocks:
            if kind == "table":
                parts += ["", _md_table(payload)]
            elif kind == "code":
                parts += ["", "```", payload, "```"]
            elif kind == "text":
                parts += ["", payload]
            else:
                parts += ["", f"_Plot: {payload[0]} (in {REPORT_HTML})._"]
    return "\n".join(parts) + "\n"


def _read_sweep(root: Path) -> dict[str, Any]:
    return read_json(root / SWEEP_NAME) if (root / SWEEP_NAME).is_file() else {}


def _overview(root: Path, runs: pd.DataFrame, summary: Mapping[str, Any]) -> _Section:
    section = _Section("Overview")
    seeds = sorted(int(s) for s in runs["seed"].dropna().unique())
    section.text(
        f"{len(runs)} finished run(s) in {root} ({len(summary['configs'])} configuration(s), seeds {seeds}); "
        f"methods: {', '.join(sorted(runs['method'].unique()))}."
    )
    return section


def write_report(
    directory: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    matched_accuracy_drop: float = 0.01,
    group_run: str | None = None,
) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` for the runs under ``directory``.

    The report holds the seed-aggregated results per method and criterion (degenerate
    configurations and runs that need Z at inference flagged), the comparison of
    methods per criterion (hypervolume with its reference point, bias at matched
    accuracy, accuracy at matched bias), the words of hard text triggers, the Pareto
    fronts, the trade-off plot, the data-efficiency plot and table (when some run used
    ``tune_fraction < 1``), the transfer plot and table (when runs hold
    ``transfer.json``), the per-group rates of one run (and its trigger, if it has
    one), the sweep config, the library version and the commands that reproduce it.
    The sweep config's ``analysis`` section sets the hypervolume reference drop and
    the matched bias.

    Parameters
    ----------
    directory
        A sweep directory or any folder holding run directories.
    out
        Folder to write both files into (default: ``directory``); written atomically.
    matched_accuracy_drop
        Bias is compared at the base accuracy minus this (0.01: one point).
    group_run
        Run id whose per-group rates are shown. Default: among non-degenerate trigger
        runs within ``matched_accuracy_drop`` of their base model's accuracy, the one
        with the lowest test gap of its criterion.

    Returns
    -------
    tuple of Path
        The paths of ``report.html`` and ``report.md``.

    Raises
    ------
    FileNotFoundError
        If ``directory`` holds no finished run.
    ValueError
        If ``matched_accuracy_drop`` is negative or ``group_run`` names no finished run.
    """
    drop = check_non_negative("matched_accuracy_drop", matched_accuracy_drop)
    root = Path(directory)
    runs = collect_runs(root)
    sweep = _read_sweep(root)
    analysis = sweep.get("config", {}).get("analysis", {})
    summary = summarize(
        runs,
        matched_accuracy_drop=drop,
        reference_accuracy_drop=analysis.get("reference_accuracy_drop", 0.10),
        matched_bias=analysis.get("matched_bias"),
    )
    sections = [
        _overview(root, runs, summary),
        _results_section(summary),
        *_trigger_words_section(runs),
        _degenerate_section(runs),
        _comparison_section(summary, drop),
        *_plot_sections(summary),
        *_transfer_section(runs),
        _group_section(root, runs, group_run=group_run, drop=drop),
        _reproduce_section(root, sweep),
    ]
    title = f"fairreprogram report: {sweep.get('config', {}).get('name', root.name)}"
    target = Path(out) if out is not None else root
    html_path, md_path = target / REPORT_HTML, target / REPORT_MARKDOWN
    atomic_write_text(html_path, _render_html(title, sections))
    atomic_write_text(md_path, _render_markdown(title, sections))
    return html_path, md_path
