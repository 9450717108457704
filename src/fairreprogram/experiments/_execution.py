"""Executing a sweep: base models, trials and transfer evaluations as one set of jobs.

Each job starts once the jobs it needs are done: a trial needs its seed's base model
(so trials of a finished base run while other seeds' bases still train), and with
``transfer: true`` the transfer evaluation of a trigger trial on the whole tuning split
needs the trial and the base models it is evaluated on. Transfers go before queued
trials, so a sweep stopped part-way already holds the transfers of its finished
triggers.

Backends:

- ``local`` (default): ``workers`` worker processes on this machine; with one worker
  the trials run one after another in the calling process (no start-up cost).
- ``ray``: the same work as Ray tasks, on a local Ray instance or on the cluster at
  ``address`` (needs the ``ray`` extra). The config is unchanged.

A job that fails does not stop the others: the sweep runs every job it can, writes the
failures' tracebacks to ``failures.log`` in the sweep directory and then raises
:class:`SweepFailed` naming them. The jobs that need a failed one (the trials of a
failed base model) are not run and are named too, with :class:`DependencyFailed`. Fix
the cause and run the same command again.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from fairreprogram._version import __version__
from fairreprogram.experiments._rundir import reuse_finished
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

__all__ = ["BACKENDS", "FAILURES_NAME", "SWEEP_NAME", "DependencyFailed", "SweepFailed", "run_sweep"]

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

Failure = tuple[str, BaseException]


@dataclass(frozen=True)
class _Job:
    """One unit of a sweep's work: ``fn(**kwargs)``, started once every job in ``after`` succeeded.

    Names in ``after`` that are not jobs of this sweep (a base model finished earlier) count
    as done. ``urgent`` jobs (transfer evaluations) go before the other ready jobs.
    """

    name: str
    fn: Callable[..., Any]
    kwargs: dict[str, Any]
    after: tuple[str, ...] = ()
    urgent: bool = False


class DependencyFailed(RuntimeError):
    """A sweep job was not run because a job it needs failed."""


class SweepFailed(RuntimeError):
    """Some jobs of a sweep failed; ``failures`` holds ``(job name, error)`` pairs."""

    def __init__(self, failures: list[Failure], total: str, log: Path) -> None:
        self.failures = failures
        lines = [f"{name}: {type(error).__name__}: {error}" for name, error in failures]
        super().__init__(
            f"{len(failures)} of {total} failed (the rest ran; tracebacks in {log}):\n  "
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
    """``workers`` local processes; with one worker, the jobs run in this process."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.capacity: int | None = workers  # jobs in flight at once: priorities hold
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

    def submit(self, job: _Job) -> Any:
        if self.pool is None:
            return _Ran(job)
        return self.pool.submit(job.fn, **job.kwargs)

    def wait(self, running: set[Any]) -> set[Any]:
        if self.pool is None:
            return set(running)  # already ran
        return cf.wait(running, return_when=cf.FIRST_COMPLETED)[0]


class _Ran:
    """A job run in this process at submission (one worker), holding its result or error."""

    def __init__(self, job: _Job) -> None:
        self.value: Any = None
        self.error: Exception | None = None
        try:
            self.value = job.fn(**job.kwargs)
        except Exception as error:  # recorded; the other jobs still run
            self.error = error

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class _RayBackend:
    def __init__(self, address: str | None, workers: int) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError(_RAY_MISSING) from None
        self.ray = ray
        self.address = address
        self.workers = workers
        self.capacity: int | None = None  # Ray places every ready job by its resources

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

    def submit(self, job: _Job) -> Any:
        return _RayResult(self.ray, self.ray.remote(num_cpus=1)(job.fn).remote(**job.kwargs))

    def wait(self, running: set[Any]) -> set[Any]:
        by_ref = {handle.ref: handle for handle in running}
        done, _ = self.ray.wait(list(by_ref), num_returns=1)
        return {by_ref[ref] for ref in done}


class _RayResult:
    def __init__(self, ray: Any, ref: Any) -> None:
        self.ray, self.ref = ray, ref

    def result(self) -> Any:
        return self.ray.get(self.ref)


def _run_jobs(backend: Any, jobs: Sequence[_Job], bar: tqdm, failures: list[Failure]) -> None:
    """Run ``jobs`` on ``backend``, each once its dependencies succeeded.

    Ready jobs start in order (urgent ones first) while the backend has room. A job whose
    dependency failed is not run and is recorded as failed too; every other job still runs.
    """
    names = {job.name for job in jobs}
    waiting = list(jobs)
    succeeded: set[str] = set()
    failed: set[str] = set()
    running: dict[Any, _Job] = {}
    while waiting or running:
        for job in [j for j in waiting if failed.intersection(j.after)]:
            waiting.remove(job)
            failed.add(job.name)
            missing = ", ".join(sorted(failed.intersection(job.after)))
            failures.append((job.name, DependencyFailed(f"not run: it needs {missing}, which failed")))
            bar.update(1)
        ready = [j for j in waiting if all(d in succeeded or d not in names for d in j.after)]
        ready.sort(key=lambda j: not j.urgent)  # stable: otherwise in the order given
        for job in ready:
            if backend.capacity is not None and len(running) >= backend.capacity:
                break
            waiting.remove(job)
            bar.set_postfix(running=len(running) + 1, queued=len(waiting), refresh=True)
            running[backend.submit(job)] = job  # with one local worker, it runs here and now
        if not running:
            break  # nothing left that can run
        bar.set_postfix(running=len(running), queued=len(waiting), refresh=True)
        for handle in backend.wait(set(running)):
            job = running.pop(handle)
            try:
                handle.result()
                succeeded.add(job.name)
            except Exception as error:  # recorded; the other jobs still run
                failures.append((job.name, error))
                failed.add(job.name)
            bar.update(1)


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


def _write_failures(root: Path, failures: list[Failure]) -> Path:
    """Write the tracebacks of ``failures`` to ``failures.log`` and return its path."""
    log = root / FAILURES_NAME
    blocks = [
        f"== {name}\n" + "".join(traceback.format_exception(type(error), error, error.__traceback__))
        for name, error in failures
    ]
    atomic_write_text(log, "\n".join(blocks))
    return log


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


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
        common = {"sweep_dir": str(root), "config": raw, "threads": threads}
        bases = [(s, a) for s in seeds for a in architectures]
        base_jobs = [
            _Job(base_dir(root, s, a).name, run_base, {**common, "seed": s, "architecture": a})
            for s, a in bases
            if not reuse_finished(base_dir(root, s, a), base_run_config(sweep, s, a))
        ]
        # A trial needs only its own seed's base model, so trials start while others train.
        trial_jobs = [
            _Job(
                t.trial_id, run_trial, {**common, "trial": t.to_dict()}, after=(base_dir(root, t.seed).name,)
            )
            for t in todo
        ]
        every_base = [base_dir(root, s, a).name for s, a in bases]
        transfer_jobs = _transfer_jobs(root, trials, seeds, every_base, common) if sweep.transfer else []
        failures: list[Failure] = []
        jobs = [*base_jobs, *trial_jobs, *transfer_jobs]
        what = ", ".join(
            [
                _count(len(base_jobs), "base model"),
                _count(len(trial_jobs), "trial") + f" ({len(trials) - len(todo)} done before)",
                _count(len(transfer_jobs), "transfer"),
            ]
        )
        if jobs:
            with tqdm(
                total=len(jobs), desc=what, unit="job", disable=not progress, dynamic_ncols=True
            ) as bar:
                _run_jobs(engine, jobs, bar, failures)
        if failures:
            raise SweepFailed(failures, f"{len(jobs)} jobs ({what})", _write_failures(root, failures))
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


def _transfer_jobs(
    root: Path, trials: list[Trial], seeds: list[int], bases: list[str], common: dict[str, Any]
) -> list[_Job]:
    """A transfer evaluation for each full-data trigger trial that has none yet.

    It runs as soon as its trial and the base models it is evaluated on (``bases``, by
    name) are done, before queued trials, so a sweep stopped part-way already holds its
    triggers' transfers.
    """
    jobs = []
    for trial in trials:  # each is finished or about to run
        if not _transfers(trial) or (root / RUNS_DIR / trial.trial_id / TRANSFER_NAME).is_file():
            continue
        jobs.append(
            _Job(
                f"{trial.trial_id} (transfer)",
                run_transfer,
                {**common, "trial": trial.to_dict(), "seeds": seeds},
                after=(trial.trial_id, *bases),
                urgent=True,
            )
        )
    return jobs
