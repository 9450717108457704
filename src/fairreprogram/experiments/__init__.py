"""Runs, run directories and the demo."""

from fairreprogram.experiments._demo import DEMO_KEYS, DEMO_TRIGGER_CONFIG, format_table, run_demo
from fairreprogram.experiments._rundir import (
    METRICS_NAME,
    RUN_CONFIG_NAME,
    finish_run,
    is_finished,
    prepare_run_dir,
    read_run,
)
from fairreprogram.experiments._tabular import (
    DATA_NAME,
    evaluate_run,
    load_base_run,
    reprogram_run,
    split_metrics,
    train_base_run,
)

__all__ = [
    "DATA_NAME",
    "DEMO_KEYS",
    "DEMO_TRIGGER_CONFIG",
    "METRICS_NAME",
    "RUN_CONFIG_NAME",
    "evaluate_run",
    "finish_run",
    "format_table",
    "is_finished",
    "load_base_run",
    "prepare_run_dir",
    "read_run",
    "reprogram_run",
    "run_demo",
    "split_metrics",
    "train_base_run",
]
