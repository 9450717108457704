"""Executing a sweep: base models first, then the trials, then transfer evaluations.

With ``transfer: true``, a trigger trial on the whole tuning split is evaluated on the
other base models as soon as it finishes (in the same job), so a sweep stopped part-way
already holds the transfer results of its finished triggers; the transfer phase at the
end only catches trials that finished without one (e.g. under an older release).

Backends:

- ``local`` (default): ``workers`` worker processes on this machine; with one worker
  the trials run one after another in the calling process (no start-up cost).
- ``ray``: the same work as Ray tasks, on a local Ray instance or on the cluster at
  ``address`` (needs the ``ray`` extra). The config is unchanged.

A trial that fails does not stop the others: the sweep runs every trial it can, writes
the failures' tracebacks to ``failures.log`` in the sweep directory and then raises
:class:`SweepFailed` naming them (a failed base model stops the sweep after its phase,
since the trials need it). Fix the cause and run the same command again.

Only one process sweeps into a directory at a time: a second one (the same command
started twice) is refused before it writes anything. Finished runs are skipped and
interrupted ones resume from their checkpoints, so a sweep can be stopped (Ctrl-C, or
SIGTERM to the sweep's process) and started again. Either stops the local worker
processes too, mid-epoch if need be: nothing is lost but the unfinished epochs, and no
orphaned worker goes on writing into the sweep. Progress shows what is done, running
and left, with a time estimate.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from fairreprogram._version import __version__
from fairreprogram.experiments._rundir import is_finished, reuse_finished
from fairreprogram.experiments._sweep_config import SweepConfig, Trial, load_sweep_config
from fairreprogram.experiments._trials import (
    RUNS_DIR,
    TRANSFER_NAME,
    base_dir,
    base_run_config,
    run_base,
    run_transfer,
    run_trial,
    trial_run_config,
)
from fairreprogram.utils import (
    atomic_write_json,
    atomic_write_text,
    check_choice,
    check_positive_int,
    directory_lock,
    read_json,
)

__all__ = ["BACKENDS", "FAILURES_NAME", "SWEEP_NAME", "SweepFailed", "run_sweep"]

SWEEP_NAME = "sweep.json"
FAILURES_NAME = "failures.log"
BACKENDS = ("local", "ray")

_CHANGED = (
    "out={path} holds a sweep whose {section!r} section differs from this config; the shared base "
    "models would not match. Use another output directory, or restore the original {section!r}."
)
_RAY_MISSING = "backend='ray' needs the ray package; install fairreprogram[ray], or use --backend local."
_RAY_UNREACHABLE = (
    "could not connect to a Ray cluster at address={address!r} ({error}); nothing was run and nothing "
    "already written was touched. Check the address, or run with --backend local."
)

Job = tuple[str, Callable[..., Any], dict[str, Any]]
Failure = tuple[str, BaseException]


class SweepFailed(RuntimeError):
    """Some jobs of a sweep failed; ``failures`` holds ``(job name, error)`` pairs."""

    def __init__(self, phase: str, failures: list[Failure], total: int, log: Path) -> None:
        self.failures = failures
        lines = [f"{name}: {type(error).__name__}: {error}" for name, error in failures]
        super().__init__(
            f"{len(failures)} of {total} {phase} failed (the rest ran; tracebacks in {log}):\n  "
            + "\n  ".join(lines)
            + "\nFix the cause and run the same command again: finished runs are skipped."
        )


def _record_sweep(out: Path, config: SweepConfig, command: str) -> None:
    path = out / SWEEP_NAME
    if path.is_file():
        saved = read_json(path)["config"]
        for section in ("data", "base"):
            if saved.get(section) != config.to_dict()[section]:
                raise ValueError(_CHANGED.format(path=out, section=section))
    atomic_write_json(path, {"config": config.to_dict(), "library_version": __version__, "command": command})


class _LocalBackend:
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: cf.ProcessPoolExecutor | None = None

    def __enter__(self) -> _LocalBackend:
        if self.workers == 1:  # one worker: the trials run here, one after another
            return self
        self.pool = cf.ProcessPoolExecutor(
            max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
        )
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if self.pool is None:
            return
        if exc_type is not None:
            # Interrupted, or a trial failed: stop the running trials now instead of waiting
            # for them (they resume from their last checkpoint next time).
            processes = getattr(self.pool, "_processes", None) or {}  # no public API before 3.14
            for process in list(processes.values()):
                process.terminate()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def run(self, jobs: Sequence[Job], bar: tqdm, failures: list[Failure]) -> list[Any]:
        pool = self.pool
        if pool is None:
            results: list[Any] = []
            for done, (name, fn, kwargs) in enumerate(jobs):
                bar.set_postfix(running=1, queued=len(jobs) - done - 1, refresh=True)
                try:
                    results.append(fn(**kwargs))
                except Exception as error:  # recorded; the other jobs still run
                    failures.append((name, error))
                bar.update(1)
            return results
        futures = {pool.submit(fn, **kwargs): name for name, fn, kwargs in jobs}
        return _drain(
            futures,
            bar,
            failures,
            workers=self.workers,
            wait=lambda pending: cf.wait(pending, return_when=cf.FIRST_COMPLETED),
        )


def _drain(
    futures: dict[Any, str],
    bar: tqdm,
    failures: list[Failure],
    *,
    workers: int,
    wait: Callable[[set[Any]], tuple[set[Any], set[Any]]],
) -> list[Any]:
    """Collect results as they finish (failures into ``failures``); the bar shows progress."""
    results, pending = [], set(futures)
    while pending:
        bar.set_postfix(
            running=min(len(pending), workers), queued=max(len(pending) - workers, 0), refresh=True
        )
        done, pending = wait(pending)
        for future in done:
            try:
                results.append(future.result())
            except Exception as error:  # recorded; the other jobs still run
                failures.append((futures[future], error))
            bar.update(1)
    return results


class _RayBackend:
    def __init__(self, address: str | None, workers: int) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError(_RAY_MISSING) from None
        self.ray = ray
        self.address = address
        self.workers = workers

    def _check_reachable(self) -> None:
        # Fail in seconds, not after Ray's minute-long retries, when nothing listens there.
        if not self.address or self.address == "auto":
            return
        host, _, port = self.address.split("://", 1)[-1].rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
                pass
        except (OSError, ValueError) as error:
            raise ConnectionError(_RAY_UNREACHABLE.format(address=self.address, error=error)) from error

    def __enter__(self) -> _RayBackend:
        self._check_reachable()
        try:
            if self.address:
                self.ray.init(address=self.address, log_to_driver=False)
            else:
                self.ray.init(num_cpus=self.workers, log_to_driver=False, include_dashboard=False)
        except Exception as error:  # ray raises ConnectionError, RuntimeError, ... by version
            raise ConnectionError(_RAY_UNREACHABLE.format(address=self.address, error=error)) from error
        return self

    def __exit__(self, *exc: object) -> None:
        self.ray.shutdown()

    def run(self, jobs: Sequence[Job], bar: tqdm, failures: list[Failure]) -> list[Any]:
        ray = self.ray
        refs = {ray.remote(num_cpus=1)(fn).remote(**kwargs): name for name, fn, kwargs in jobs}

        def wait(pending: set[Any]) -> tuple[set[Any], set[Any]]:
            done, rest = ray.wait(list(pending), num_returns=1)
            return {_RayResult(ray, ref) for ref in done}, set(rest)

        return _drain(refs, bar, failures, workers=self.workers, wait=wait)


class _RayResult:
    def __init__(self, ray: Any, ref: Any) -> None:
        self.ray, self.ref = ray, ref

    def result(self) -> Any:
        return self.ray.get(self.ref)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt (so the backends clean up)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _phase(
    backend: Any, jobs: list[Job], failures: list[Failure], *, label: str, progress: bool
) -> list[Any]:
    if not jobs:
        return []
    with tqdm(total=len(jobs), desc=label, unit="run", disable=not progress, dynamic_ncols=True) as bar:
        return backend.run(jobs, bar, failures)


def _check_failures(root: Path, failures: list[Failure], *, phase: str, total: int) -> None:
    """Write the tracebacks of ``failures`` to ``failures.log`` and raise :class:`SweepFailed`."""
    if not failures:
        return
    log = root / FAILURES_NAME
    blocks = [
        f"== {name}\n" + "".join(traceback.format_exception(type(error), error, error.__traceback__))
        for name, error in failures
    ]
    atomic_write_text(log, "\n".join(blocks))
    raise SweepFailed(phase, failures, total, log)


def run_sweep(
    config: str | os.PathLike[str] | SweepConfig,
    *,
    out: str | os.PathLike[str],
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    threads_per_worker: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every trial of a sweep into ``out`` and return a summary of what ran.

    ``out`` gets ``sweep.json`` (the normalised config, library version and command),
    ``bases/`` (one ERM base model per seed, shared by the trials) and ``runs/`` (one run
    directory per trial); with ``transfer: true`` every trigger trial also gets
    ``transfer.json``. Finished runs are skipped; an interrupted run resumes.

    Raises :class:`SweepFailed` after running everything it could when some base models,
    trials or transfers failed (their tracebacks are in ``out/failures.log``),
    ``ValueError`` for a bad config or a sweep directory holding another sweep, and
    :class:`~fairreprogram.utils.DirectoryLocked` while another process sweeps into ``out``.
    """
    check_choice("backend", backend, BACKENDS)
    check_positive_int("workers", workers)
    sweep = config if isinstance(config, SweepConfig) else load_sweep_config(config)
    root = Path(out)
    threads = threads_per_worker or max(1, (os.cpu_count() or 1) // workers)
    engine: Any = _LocalBackend(workers) if backend == "local" else _RayBackend(address, workers)
    raw = sweep.to_dict()
    trials = sweep.trials()
    seeds = sorted({t.seed for t in trials} | (set(sweep.seeds) if sweep.transfer else set()))
    tic = time.perf_counter()
    # The lock comes first: a second sweep into ``out`` is refused before it writes anything.
    with directory_lock(root, what="sweep"), _sigterm_as_interrupt(), engine:
        _record_sweep(root, sweep, " ".join(["fairreprogram", *sys.argv[1:]]))
        # A finished run of another configuration is refused here, before anything runs.
        todo = [
            t for t in trials if not reuse_finished(root / RUNS_DIR / t.trial_id, trial_run_config(sweep, t))
        ]
        architectures = [None, *range(len(sweep.transfer_architectures))] if sweep.transfer else [None]
        base_jobs: list[Job] = [
            (
                base_dir(root, s, a).name,
                run_base,
                {"sweep_dir": str(root), "config": raw, "seed": s, "architecture": a, "threads": threads},
            )
            for s in seeds
            for a in architectures
            if not reuse_finished(base_dir(root, s, a), base_run_config(sweep, s, a))
        ]
        failures: list[Failure] = []
        _phase(engine, base_jobs, failures, label="base models", progress=progress)
        _check_failures(root, failures, phase="base models", total=len(base_jobs))
        trial_jobs: list[Job] = [
            (
                t.trial_id,
                _trial_then_transfer,
                {
                    "sweep_dir": str(root),
                    "config": raw,
                    "trial": t.to_dict(),
                    "threads": threads,
                    "transfer_seeds": seeds if sweep.transfer and _transfers(t) else None,
                },
            )
            for t in todo
        ]
        label = f"trials ({len(trials) - len(todo)} done before)"
        _phase(engine, trial_jobs, failures, label=label, progress=progress)
        transfer_jobs = _transfer_jobs(root, raw, trials, seeds) if sweep.transfer else []
        _phase(engine, transfer_jobs, failures, label="transfer", progress=progress)
        _check_failures(
            root, failures, phase="trials and transfers", total=len(trial_jobs) + len(transfer_jobs)
        )
        (root / FAILURES_NAME).unlink(missing_ok=True)  # an earlier run's failures are fixed now
    return {
        "trials": len(trials),
        "ran": len(todo),
        "bases": len(base_jobs),
        "transfers": len(transfer_jobs),
        "wall_time_s": time.perf_counter() - tic,
        "out": str(root),
    }


def _transfers(trial: Trial) -> bool:
    """Whether a trial's trigger is evaluated on the other base models (full-data triggers)."""
    return trial.is_trigger and trial.tune_fraction == 1.0


def _trial_then_transfer(
    *,
    sweep_dir: str,
    config: dict[str, Any],
    trial: dict[str, Any],
    threads: int | None,
    transfer_seeds: list[int] | None,
) -> dict[str, Any]:
    """Run a trial, then (with ``transfer_seeds``) its transfer evaluation; returns its metrics."""
    metrics = run_trial(sweep_dir=sweep_dir, config=config, trial=trial, threads=threads)
    if transfer_seeds is not None:
        run_transfer(sweep_dir=sweep_dir, config=config, trial=trial, seeds=transfer_seeds)
    return metrics


def _transfer_jobs(root: Path, raw: dict[str, Any], trials: list[Trial], seeds: list[int]) -> list[Job]:
    jobs: list[Job] = []
    for trial in trials:
        folder = root / RUNS_DIR / trial.trial_id
        if _transfers(trial) and is_finished(folder) and not (folder / TRANSFER_NAME).is_file():
            jobs.append(
                (
                    trial.trial_id,
                    run_transfer,
                    {"sweep_dir": str(root), "config": raw, "trial": trial.to_dict(), "seeds": seeds},
                )
            )
    return jobs
