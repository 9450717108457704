"""Run directories: one self-describing folder per run.

A run directory holds ``config.json`` (what was asked, with the library version),
the run's artifacts (weights, ``history.json``, a checkpoint while it runs) and,
written last, ``metrics.json``. A directory with ``metrics.json`` is a finished run
and is never overwritten unless asked; one with only ``config.json`` is an
interrupted run that resumes when the same configuration is asked for again.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from fairreprogram._version import __version__
from fairreprogram.utils import atomic_write_json, read_json

__all__ = [
    "METRICS_NAME",
    "RUN_CONFIG_NAME",
    "check_compatible",
    "finish_run",
    "is_finished",
    "prepare_run_dir",
    "read_run",
    "reuse_finished",
]

RUN_CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.json"

_FINISHED = (
    "out={path} already holds a finished run ({metrics} exists); pass overwrite=True "
    "(--overwrite on the command line) to replace it, or choose another output directory."
)
_OTHER_RUN = (
    "out={path} holds an unfinished run with a different configuration (differing keys: "
    "{keys}); pass overwrite=True (--overwrite) to discard it, or choose another directory."
)
_NOT_A_DIR = "out={path} exists and is not a directory; expected a directory path."
_STALE = (
    "{path} holds a finished run of a different configuration (differing keys: {keys}); expected the "
    "configuration it was run with. Remove that run directory to run it again with the new one, or "
    "sweep into another directory."
)
_NOT_A_RUN = "{path} is not a run directory: {name} is missing."
_INCOMPATIBLE = (
    "{path} was written by fairreprogram {found}; this is fairreprogram {current}, which reads runs of "
    "version {series}.x only. Re-run it with this version, or read it with fairreprogram=={found}."
)


def _series(version: str) -> str:
    return ".".join(version.split(".")[:2])


def check_compatible(path: str | os.PathLike[str], config: dict[str, Any]) -> None:
    """Raise ``ValueError`` if a run's recorded library version is not this major.minor series."""
    found = str(config.get("library_version", "unknown"))
    if _series(found) != _series(__version__):
        raise ValueError(
            _INCOMPATIBLE.format(path=path, found=found, current=__version__, series=_series(__version__))
        )


# Files and folders a run writes; only these are removed when overwriting.
_RUN_ARTIFACTS = (
    RUN_CONFIG_NAME,
    METRICS_NAME,
    "history.json",
    "checkpoint.safetensors",
    "data.json",
    "model",
    "trigger",
    "plots",
)


def is_finished(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a finished run."""
    return (Path(path) / METRICS_NAME).is_file()


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in ("library_version", "created_by")}


def _differences(saved: Any, wanted: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ.

    Keys only in ``wanted`` are options that a newer release added (with their
    defaults), so they do not count.
    """
    if not (isinstance(saved, dict) and isinstance(wanted, dict)):
        return [] if saved == wanted else [prefix.rstrip(".") or "(value)"]
    keys = []
    for key in sorted(saved):
        if key not in wanted:
            keys.append(prefix + key)
        else:
            keys += _differences(saved[key], wanted[key], f"{prefix}{key}.")
    return keys


def reuse_finished(path: str | os.PathLike[str], config: dict[str, Any]) -> bool:
    """Whether ``path`` holds a finished run of ``config`` (``False``: not finished).

    A finished run of another configuration is refused with the differing keys named,
    so that a changed sweep config never silently reuses results run with the old one.
    """
    out = Path(path)
    if not is_finished(out):
        return False
    saved = _comparable(read_json(out / RUN_CONFIG_NAME))
    keys = _differences(saved, _comparable(config))
    if keys:
        raise ValueError(_STALE.format(path=out, keys=keys))
    return True


def prepare_run_dir(path: str | os.PathLike[str], config: dict[str, Any], *, overwrite: bool = False) -> Path:
    """Create or reopen a run directory for ``config``.

    Refuses a finished run (unless ``overwrite``) and an unfinished run of another
    configuration (unless ``overwrite``); an unfinished run of the same configuration
    is reopened so that it resumes. With ``overwrite`` only the run's own artifacts
    are removed, never other files.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(_NOT_A_DIR.format(path=out))
    if overwrite:
        for name in _RUN_ARTIFACTS:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    elif is_finished(out):
        raise FileExistsError(_FINISHED.format(path=out, metrics=METRICS_NAME))
    elif (out / RUN_CONFIG_NAME).is_file():
        keys = _differences(_comparable(read_json(out / RUN_CONFIG_NAME)), _comparable(config))
        if keys:
            raise ValueError(_OTHER_RUN.format(path=out, keys=keys))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / RUN_CONFIG_NAME, {**config, "library_version": __version__})
    return out


def finish_run(path: str | os.PathLike[str], metrics: dict[str, Any]) -> None:
    """Write ``metrics.json``, the marker of a finished run (last artifact written)."""
    atomic_write_json(Path(path) / METRICS_NAME, metrics)


def read_run(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Return ``(config, metrics or None)`` of a run directory of a compatible version."""
    run = Path(path)
    if not (run / RUN_CONFIG_NAME).is_file():
        raise FileNotFoundError(_NOT_A_RUN.format(path=run, name=RUN_CONFIG_NAME))
    config = read_json(run / RUN_CONFIG_NAME)
    check_compatible(run, config)
    metrics = read_json(run / METRICS_NAME) if is_finished(run) else None
    return config, metrics
