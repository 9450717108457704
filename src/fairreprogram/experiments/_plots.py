"""Figures of a sweep: trade-off, data efficiency, transfer, per-group rates and triggers.

Every function returns a :class:`matplotlib.figure.Figure` attached to its own Agg
canvas. Nothing here goes through pyplot or changes the session's backend, so the
functions work the same headless (workers, servers, tests) and in a notebook, and
no figure is left open in a global registry. Save one with ``fig.savefig(path)``.

The gaps on the x axes are fairlearn's convention (``dp_gap``, ``eo_gap``: largest
minus smallest group rate), the one :func:`~fairreprogram.experiments.summarize`
compares methods on; they are drawn negated so that right is fairer and up is more
accurate, as in Figure 3 of the Fairness Reprogramming paper.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fairreprogram.engine import Criterion
from fairreprogram.experiments._analysis import efficiency_families
from fairreprogram.triggers import Trigger

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "GROUP_RATES",
    "TRANSFER_TARGET",
    "plot_efficiency",
    "plot_group_rates",
    "plot_tradeoff",
    "plot_transfer",
    "plot_trigger",
]

TRANSFER_TARGET = 0.7
"""Share of the source's bias reduction a transferred trigger should keep (a benchmark target)."""

GROUP_RATES: tuple[tuple[str, str], ...] = (
    ("selection_rate", "selection rate"),
    ("tpr", "TPR"),
    ("fpr", "FPR"),
    ("accuracy", "accuracy"),
)
"""``(key of a by_group row, label)`` of the rates :func:`plot_group_rates` draws."""

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
_DEGENERATE_COLOUR = "0.55"
_CRITERION_COLOURS = {Criterion.DEMOGRAPHIC_PARITY: "tab:blue", Criterion.EQUALIZED_ODDS: "tab:orange"}

_NOT_A_SUMMARY = (
    "summary of type {kind} is not valid; expected the dict returned by summarize() "
    "(with a 'configs' DataFrame and a 'base' dict)."
)
_NO_EFFICIENCY = (
    "summary holds no configuration with tune_fraction < 1; expected a sweep with a "
    "data-efficiency block (e.g. tune_fraction: [0.1, 0.5])."
)
_NOT_TRANSFERS = (
    "transfers={value!r} is not valid; expected a non-empty mapping trial id -> transfer.json record."
)
_BAD_TRANSFER = "transfers[{trial!r}] has no 'targets' mapping; expected a record read from transfer.json."
_NO_GROUPS = (
    "run_metrics has no 'by_group' rows (keys: {keys}); expected a run's metrics.json dict "
    "or its 'test' entry (FairnessEvaluation.to_dict())."
)
_NOT_METRICS = "run_metrics of type {kind} is not valid; expected a mapping (a run's metrics.json)."
_NOT_A_TRIGGER = "trigger of type {kind} is not valid; expected a fairreprogram.triggers.Trigger."


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _styles(methods: Iterable[str]) -> dict[str, tuple[str, str]]:
    """One (colour, marker) per method, stable for a given set of methods."""
    ordered = sorted(set(methods))
    return {m: (f"C{i % 10}", _MARKERS[i % len(_MARKERS)]) for i, m in enumerate(ordered)}


def _configs(summary: Mapping[str, Any]) -> pd.DataFrame:
    if not isinstance(summary, Mapping) or not isinstance(summary.get("configs"), pd.DataFrame):
        raise TypeError(_NOT_A_SUMMARY.format(kind=type(summary).__name__))
    return summary["configs"]


def _finite(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def _trend(ax: Axes, x: np.ndarray, y: np.ndarray, colour: str) -> None:
    x, y = _finite(x, y)
    if np.unique(x).size < 2:
        return
    slope, intercept = np.polyfit(x, y, 1)
    xs = np.linspace(x.min(), x.max(), 20)
    ax.plot(xs, slope * xs + intercept, color=colour, linestyle="--", linewidth=1.2, alpha=0.8)


def _base_marker(ax: Axes, base: Mapping[str, float], gap: str) -> None:
    if not math.isfinite(base.get(gap, math.nan)) or not math.isfinite(base.get("accuracy", math.nan)):
        return
    ax.scatter(
        [-base[gap]], [base["accuracy"]], marker="*", s=220, color="black", label="base model", zorder=4
    )


def _tradeoff_panel(ax: Axes, rows: pd.DataFrame, criterion: Criterion, styles: dict[str, Any]) -> None:
    gap = criterion.gap_key
    labelled = False
    for method, part in rows.groupby("method", sort=True):
        colour, marker = styles[method]
        usable = part[part["degenerate"] == ""]
        x, y = -usable[gap].to_numpy(float), usable["accuracy"].to_numpy(float)
        if len(usable):
            ax.scatter(x, y, color=colour, marker=marker, s=40, label=method, zorder=3)
        _trend(ax, x, y, colour)
        bad = part[part["degenerate"] != ""]
        if len(bad):
            ax.scatter(
                -bad[gap],
                bad["accuracy"],
                marker="x",
                s=60,
                color=_DEGENERATE_COLOUR,
                label=None if labelled else "degenerate",
                zorder=2,
            )
            for bx, by in zip(-bad[gap], bad["accuracy"], strict=True):
                ax.annotate(
                    method,
                    (bx, by),
                    xytext=(0, 5),
                    textcoords="offset points",
                    ha="center",
                    fontsize=6,
                    color=_DEGENERATE_COLOUR,
                )
            labelled = True
    if rows.empty:
        ax.text(0.5, 0.5, "no configuration of this criterion", ha="center", transform=ax.transAxes)
    ax.margins(x=0.1, y=0.08)  # room for the labels of degenerate points at the edges
    ax.set_xlabel(f"− {criterion.short.upper()} gap (fairlearn convention; right is fairer)")
    ax.set_ylabel("test accuracy (seed mean)")
    ax.set_title(criterion.value.replace("_", " "))
    ax.grid(alpha=0.3)


def plot_tradeoff(summary: Mapping[str, Any]) -> Figure:
    """Accuracy against the negative DP gap and the negative EO gap (Figure 3 layout).

    One panel per criterion; each point is the seed mean of one configuration of that
    criterion tuned on the whole tuning split, one colour and marker per method, with
    a least-squares line per method through its non-degenerate points (drawn when
    there are at least two distinct gaps). Degenerate configurations are grey crosses
    labelled "degenerate" and never enter a trend line; the base model is a black star.

    Parameters
    ----------
    summary
        The dict returned by :func:`~fairreprogram.experiments.summarize`.

    Returns
    -------
    matplotlib.figure.Figure
        A figure with one axes per criterion (two).
    """
    configs = _configs(summary)
    styles = _styles(configs.loc[configs["criterion"].notna(), "method"])
    fig = _figure(11.0, 4.6)
    axes = fig.subplots(1, len(Criterion), squeeze=False)[0]
    for ax, criterion in zip(axes, Criterion, strict=True):
        rows = configs[(configs["criterion"] == criterion.value) & (configs["tune_fraction"] == 1.0)]
        _tradeoff_panel(ax, rows, criterion, styles)
        _base_marker(ax, summary.get("base", {}), criterion.gap_key)
        _legend(ax)
    return fig


def _legend(ax: Axes) -> None:
    """Legend with the methods first, then the degenerate and base markers."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    last = ("degenerate", "base model")
    # sorted() is stable: methods keep their order, the two markers go last.
    order = sorted(range(len(labels)), key=lambda i: last.index(labels[i]) + 1 if labels[i] in last else 0)
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=7, loc="best")


def _efficiency_panel(ax: Axes, lines: list[tuple[str, str, pd.DataFrame]], key: str, styles: Any) -> None:
    labelled = False
    for label, method, frame in lines:
        colour, marker = styles[method]
        std = frame.get(f"{key}_std")
        ax.errorbar(
            frame["tune_fraction"], frame[key], yerr=std, color=colour, marker=marker, capsize=3, label=label
        )
        bad = frame[frame["degenerate"] != ""]
        if len(bad):
            ax.scatter(
                bad["tune_fraction"],
                bad[key],
                marker="x",
                s=80,
                color=_DEGENERATE_COLOUR,
                zorder=4,
                label=None if labelled else "degenerate",
            )
            labelled = True
    fractions = pd.concat([frame["tune_fraction"] for _, _, frame in lines])
    if fractions.max() / fractions.min() > 10:
        ax.set_xscale("log")
    ax.set_xlabel("share of the tuning split used")
    ax.grid(alpha=0.3)


def plot_efficiency(summary: Mapping[str, Any]) -> Figure:
    """Gap and accuracy against the share of tuning data used (Figure 4 layout).

    One row per criterion that has configurations with ``tune_fraction < 1``: the
    criterion's gap (left) and the accuracy (right) of each configuration family
    (same method, lambda and options) over its tuning fractions, seed means with
    seed standard deviations as error bars. The base model is a dotted line. The x
    axis is logarithmic when the fractions span more than a factor of ten.

    Parameters
    ----------
    summary
        The dict returned by :func:`~fairreprogram.experiments.summarize`.

    Returns
    -------
    matplotlib.figure.Figure
        A figure with two axes per criterion that has data-efficiency runs.

    Raises
    ------
    ValueError
        If no configuration uses ``tune_fraction < 1``.
    """
    configs = _configs(summary)
    panels = [(c, lines) for c in Criterion if (lines := efficiency_families(configs, c))]
    if not panels:
        raise ValueError(_NO_EFFICIENCY)
    styles = _styles(method for _, lines in panels for _, method, _ in lines)
    base = summary.get("base", {})
    fig = _figure(11.0, 4.0 * len(panels))
    axes = fig.subplots(len(panels), 2, squeeze=False)
    for row, (criterion, lines) in zip(axes, panels, strict=True):
        for ax, key, label in (
            (row[0], criterion.gap_key, f"{criterion.short.upper()} gap"),
            (row[1], "accuracy", "accuracy"),
        ):
            _efficiency_panel(ax, lines, key, styles)
            if math.isfinite(base.get(key, math.nan)):
                ax.axhline(base[key], color="black", linestyle=":", label="base model")
            ax.set_ylabel(f"test {label} (seed mean)")
            ax.set_title(f"{criterion.value.replace('_', ' ')}: {label}")
            ax.legend(fontsize=7, loc="best")
    return fig


def _transfer_rows(transfers: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, float, str]]:
    if not isinstance(transfers, Mapping) or not transfers:
        raise ValueError(_NOT_TRANSFERS.format(value=transfers))
    rows = []
    for trial, record in sorted(transfers.items()):
        targets = record.get("targets") if isinstance(record, Mapping) else None
        if not isinstance(targets, Mapping):
            raise ValueError(_BAD_TRANSFER.format(trial=trial))
        for target, result in sorted(targets.items()):
            share = result.get("share_of_reduction_kept")
            value = math.nan if share is None else float(share)
            rows.append((f"{trial} → {target}", value, str(record.get("criterion", ""))))
    return rows


def plot_transfer(transfers: Mapping[str, Mapping[str, Any]]) -> Figure:
    """Share of the bias reduction a trigger keeps on other base models, per (trial, target).

    Horizontal bars, coloured by criterion, with dashed lines at
    :data:`TRANSFER_TARGET` (0.7) and at 1.0 (all of the reduction kept). A share is
    undefined ("n/a") when the trigger reduced no bias on its own base model.

    Parameters
    ----------
    transfers
        Trial id -> the record of its ``transfer.json`` (``criterion`` and ``targets``
        with ``share_of_reduction_kept`` per target base).

    Returns
    -------
    matplotlib.figure.Figure
        A figure with one axes.
    """
    rows = _transfer_rows(transfers)
    fig = _figure(9.0, max(3.0, 1.5 + 0.26 * len(rows)))
    ax = fig.subplots()
    ypos = np.arange(len(rows))
    shares = np.array([share for _, share, _ in rows])
    criteria = np.array([crit for _, _, crit in rows])
    for criterion in Criterion:
        keep = (criteria == criterion.value) & np.isfinite(shares)
        if keep.any():
            colour = _CRITERION_COLOURS.get(criterion, "tab:gray")
            ax.barh(ypos[keep], shares[keep], 0.7, color=colour, label=criterion.value.replace("_", " "))
    for y in ypos[~np.isfinite(shares)]:
        ax.text(0.02, y, "n/a: no bias reduction on the source base", va="center", fontsize=7, color="0.4")
    ax.axvline(0.0, color="0.3", linewidth=0.8)
    ax.axvline(TRANSFER_TARGET, color="tab:red", linestyle="--", label=f"target {TRANSFER_TARGET:g}")
    ax.axvline(1.0, color="0.2", linestyle="--", label="all of the reduction kept")
    ax.set_yticks(ypos, [label for label, _, _ in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("share of the source's bias reduction kept on the target base")
    ax.set_title("trigger transfer to other base models")
    ax.legend(fontsize=7, loc="best")
    return fig


def _group_rows(run_metrics: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if not isinstance(run_metrics, Mapping):
        raise TypeError(_NOT_METRICS.format(kind=type(run_metrics).__name__))
    split = run_metrics if "by_group" in run_metrics else run_metrics.get("test", {})
    rows = split.get("by_group") if isinstance(split, Mapping) else None
    if not rows:
        raise ValueError(_NO_GROUPS.format(keys=sorted(run_metrics)[:12]))
    return list(rows)


def plot_group_rates(run_metrics: Mapping[str, Any], *, title: str = "per-group test rates") -> Figure:
    """Bars of selection rate, TPR, FPR and accuracy per group for one run.

    Parameters
    ----------
    run_metrics
        A run's ``metrics.json`` dict (its ``test`` entry is used) or one
        ``FairnessEvaluation.to_dict()`` (with ``by_group`` rows).
    title
        Title of the axes.

    Returns
    -------
    matplotlib.figure.Figure
        A figure with one axes.
    """
    rows = _group_rows(run_metrics)
    fig = _figure(max(7.0, 2.0 + 0.35 * len(rows) * len(GROUP_RATES)), 4.2)
    ax = fig.subplots()
    x = np.arange(len(GROUP_RATES))
    width = 0.8 / len(rows)
    for i, row in enumerate(rows):
        values = [math.nan if row.get(key) is None else float(row[key]) for key, _ in GROUP_RATES]
        label = f"{row.get('group', i)} (n={row.get('count', '?')})"
        ax.bar(x + (i - (len(rows) - 1) / 2) * width, values, width, label=label)
    ax.set_xticks(x, [label for _, label in GROUP_RATES])
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel("rate on the test split")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=min(4, len(rows)), loc="upper center", bbox_to_anchor=(0.5, -0.08))
    return fig


def plot_trigger(trigger: Trigger, *, feature_names: Sequence[str] | None = None) -> Figure:
    """Draw a trigger with its own :meth:`~fairreprogram.triggers.Trigger.plot`.

    The figure grows with the number of labels the trigger puts on the y axis.

    Parameters
    ----------
    trigger
        Any trigger (a loaded ``Trigger.from_pretrained(run / "trigger")``).
    feature_names
        Names of the input features, passed on to the trigger's ``plot``.

    Returns
    -------
    matplotlib.figure.Figure
        A figure with one axes.
    """
    if not isinstance(trigger, Trigger):
        raise TypeError(_NOT_A_TRIGGER.format(kind=type(trigger).__name__))
    fig = _figure(8.0, 4.0)
    ax = fig.subplots()
    trigger.plot(ax, feature_names=feature_names)
    labels = len(ax.get_yticklabels())
    fig.set_size_inches(8.0, min(12.0, max(4.0, 1.5 + 0.2 * labels)))
    return fig
