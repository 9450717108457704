"""Runs, run directories, sweeps, their analysis and the demo."""

from fairreprogram.experiments._analysis import (
    accuracy_at_bias,
    bias_at_accuracy,
    collect_runs,
    degeneracy,
    efficiency_families,
    hypervolume,
    pareto_front,
    summarize,
    transfer_summary,
)
from fairreprogram.experiments._demo import DEMO_KEYS, DEMO_TRIGGER_CONFIG, format_table, run_demo
from fairreprogram.experiments._execution import BACKENDS, FAILURES_NAME, SWEEP_NAME, SweepFailed, run_sweep
from fairreprogram.experiments._plots import (
    plot_efficiency,
    plot_group_rates,
    plot_tradeoff,
    plot_transfer,
    plot_trigger,
)
from fairreprogram.experiments._report import REPORT_HTML, REPORT_MARKDOWN, write_report
from fairreprogram.experiments._rundir import (
    METRICS_NAME,
    RUN_CONFIG_NAME,
    finish_run,
    is_finished,
    prepare_run_dir,
    read_run,
)
from fairreprogram.experiments._runs import (
    DATA_NAME,
    evaluate_run,
    load_base_run,
    reprogram_run,
    split_metrics,
    train_base_run,
)
from fairreprogram.experiments._sweep_config import (
    BASELINE_METHODS,
    SweepConfig,
    Trial,
    available_methods,
    load_sweep_config,
)
from fairreprogram.experiments._tasks import ImageTask, TabularTask, Task, TextTask, build_task, register_task

__all__ = [
    "BACKENDS",
    "BASELINE_METHODS",
    "DATA_NAME",
    "DEMO_KEYS",
    "DEMO_TRIGGER_CONFIG",
    "FAILURES_NAME",
    "METRICS_NAME",
    "REPORT_HTML",
    "REPORT_MARKDOWN",
    "RUN_CONFIG_NAME",
    "SWEEP_NAME",
    "ImageTask",
    "SweepConfig",
    "SweepFailed",
    "TabularTask",
    "Task",
    "TextTask",
    "Trial",
    "accuracy_at_bias",
    "available_methods",
    "bias_at_accuracy",
    "build_task",
    "collect_runs",
    "degeneracy",
    "efficiency_families",
    "evaluate_run",
    "finish_run",
    "format_table",
    "hypervolume",
    "is_finished",
    "load_base_run",
    "load_sweep_config",
    "pareto_front",
    "plot_efficiency",
    "plot_group_rates",
    "plot_tradeoff",
    "plot_transfer",
    "plot_trigger",
    "prepare_run_dir",
    "read_run",
    "register_task",
    "reprogram_run",
    "run_demo",
    "run_sweep",
    "split_metrics",
    "summarize",
    "train_base_run",
    "transfer_summary",
    "write_report",
]
