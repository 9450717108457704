import json
import math
import shutil

import pytest
from tqdm.auto import tqdm

from fairreprogram.experiments import (
    SweepConfig,
    accuracy_at_bias,
    bias_at_accuracy,
    collect_runs,
    degeneracy,
    hypervolume,
    load_sweep_config,
    pareto_front,
    run_sweep,
)

TINY = {
    "name": "tiny",
    "data": {"spec": "arrests", "seed": 0},
    "base": {"hidden_sizes": [8], "train": {"epochs": 3, "class_weight": "balanced"}},
    "train": {"epochs": 3, "lr": 0.02, "class_weight": "balanced", "max_accuracy_drop": 0.05},
    "methods": {"advpost": {"lr": 0.001}},
    "seeds": [0],
    "grid": [
        {"method": ["mask_offset", "advpost"], "criterion": ["dp", "eo"], "lam": [1.0]},
        {"method": "threshold", "criterion": "dp"},
        {"method": "erm", "criterion": ["dp", "eo"]},
    ],
}


def _config(**changes):
    return SweepConfig.from_dict({**TINY, **changes})


def test_grid_expands_to_unique_trials_with_merged_options():
    config = _config(
        seeds=[0, 1],
        grid=[
            *TINY["grid"],
            {"method": "mask_offset", "lam": [1.0, 2.0], "tune_fraction": [0.5], "train": {"lr": [0.1]}},
        ],
    )
    trials = config.trials()
    ids = [t.trial_id for t in trials]
    assert len(ids) == len(set(ids))
    assert sum(t.method == "erm" for t in trials) == 2  # one per seed, whatever the criteria
    assert {t.method for t in trials} == {"mask_offset", "advpost", "threshold", "erm"}
    post = next(t for t in trials if t.method == "advpost")
    assert config.train_config(post).lr == 0.001 and config.train_config(post).epochs == 3
    tuned = [t for t in trials if t.tune_fraction == 0.5]
    assert len(tuned) == 4 and all(config.train_config(t).lr == 0.1 for t in tuned)
    assert all("frac0.5" in t.trial_id for t in tuned)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"colour": 1}, r"config has unknown key\(s\) \['colour'\]"),
        ({"grid": [{"method": "mask_offset", "lr": 1}]}, r"grid\[0\] has unknown key\(s\) \['lr'\]"),
        ({"grid": [{"method": "boost"}]}, r"grid\[0\]: method='boost' is not valid"),
        ({"grid": [{"method": "mask_offset", "criterion": "parity"}]}, r"criterion='parity' is not valid"),
        (
            {"grid": [{"method": "mask_offset", "trigger_options": {"size": 3}}]},
            r"trigger 'mask_offset' has no option\(s\) \['size'\]",
        ),
        ({"grid": []}, r"grid=\[\] is empty"),
        ({"grid": [{"method": []}]}, r"is empty"),
        ({"grid": [{"method": "mask_offset", "tune_fraction": 2}]}, r"tune_fraction=2 is not valid"),
        ({"train": {"lam": -1}}, r"lam=-1 is not valid"),
        ({"methods": {"advpost": {"colour": 1}}}, r"unknown option\(s\) \['colour'\]"),
        ({"data": {"path": "x"}}, r"expected a mapping with a 'spec' string"),
    ],
)
def test_bad_configs_are_refused_with_clear_messages(changes, message):
    with pytest.raises(ValueError, match=message):
        _config(**changes)


def test_config_files(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps(TINY))
    (tmp_path / "s.yaml").write_text("name: tiny\ndata: {spec: arrests}\ngrid:\n  - {method: erm}\n")
    assert load_sweep_config(tmp_path / "s.json").name == "tiny"
    assert len(load_sweep_config(tmp_path / "s.yaml").trials()) == 1
    (tmp_path / "s.txt").write_text("{}")
    with pytest.raises(ValueError, match=r"expected a \.yaml, \.yml or \.json file"):
        load_sweep_config(tmp_path / "s.txt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_sweep_config(tmp_path / "missing.yaml")


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    summary = run_sweep(_config(), out=out, workers=1, threads_per_worker=1, progress=False)
    return out, summary


def test_a_second_sweep_into_a_busy_directory_is_refused_before_writing(tmp_path):
    from fairreprogram.utils import DirectoryLocked, directory_lock

    # As if the same command were already running:
    with (
        directory_lock(tmp_path, what="sweep"),
        pytest.raises(DirectoryLocked, match="in use by another sweep"),
    ):
        run_sweep(_config(), out=tmp_path, workers=1, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == [".lock"]


def test_sweep_runs_everything_once_and_resumes(swept):
    out, summary = swept
    assert summary["trials"] == 6 and summary["ran"] == 6 and summary["bases"] == 1
    runs = collect_runs(out)
    assert set(runs["method"]) == {"base", "mask_offset", "advpost", "threshold", "erm"}
    assert runs.loc[runs["method"] == "threshold", "uses_z_at_inference"].all()
    again = run_sweep(_config(), out=out, workers=1, progress=False)
    assert again["ran"] == 0 and again["bases"] == 0
    victim = out / "runs" / "mask_offset-dp-lam1-s0"
    before = json.loads((victim / "metrics.json").read_text())
    (victim / "metrics.json").unlink()  # as if interrupted after the last checkpoint
    resumed = run_sweep(_config(), out=out, workers=1, threads_per_worker=1, progress=False)
    assert resumed["ran"] == 1
    after = json.loads((victim / "metrics.json").read_text())
    assert after["test"]["overall"] == before["test"]["overall"]
    # Its wall time covers the earlier session's epochs too, not only the resumed call.
    assert before["earlier_wall_time_s"] == 0.0 < after["earlier_wall_time_s"] <= after["wall_time_s"]


def test_a_sweep_base_and_trial_can_be_evaluated_and_compared(swept):
    from fairreprogram.experiments import compare_run, evaluate_run

    out, _ = swept
    trial = out / "runs" / "mask_offset-dp-lam1-s0"
    saved = json.loads((trial / "metrics.json").read_text())["test"]["overall"]
    again = evaluate_run(base=out / "bases" / "base-s0", trigger=trial)
    assert again.overall["dp_gap"] == pytest.approx(saved["dp_gap"])
    compared = compare_run(base=out / "bases" / "base-s0", trigger=trial, n_bootstrap=20)
    base = json.loads((out / "bases" / "base-s0" / "metrics.json").read_text())["test"]["overall"]
    assert compared.before["accuracy"] == pytest.approx(base["accuracy"])
    assert compared.after["accuracy"] == pytest.approx(saved["accuracy"])


def test_finished_runs_of_a_changed_config_are_refused_not_reused(swept):
    out, _ = swept
    changed = _config()
    raw = changed.to_dict()
    raw["train"] = {**raw["train"], "lr": 0.123}
    with pytest.raises(ValueError, match=r"finished run of a different configuration.*train\.lr"):
        run_sweep(SweepConfig.from_dict(raw), out=out, workers=1, progress=False)


def test_changed_data_section_is_refused(swept):
    out, _ = swept
    with pytest.raises(ValueError, match="'data' section differs"):
        run_sweep(_config(data={"spec": "arrests", "seed": 1}), out=out, progress=False)


def test_incompatible_run_directory_is_refused(swept, tmp_path):
    out, _ = swept
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(out / "runs" / "erm-s0", copy / "erm-s0")
    config = json.loads((copy / "erm-s0" / "config.json").read_text())
    config["library_version"] = "0.0.3"
    (copy / "erm-s0" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"written by fairreprogram 0\.0\.3.*reads runs of version 0\.1\.x"):
        collect_runs(copy)


def test_collect_runs_on_an_empty_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no finished runs"):
        collect_runs(tmp_path)


def test_unknown_backend_and_unreachable_ray_cluster(swept):
    out, _ = swept
    with pytest.raises(ValueError, match="backend='spark' is not valid"):
        run_sweep(_config(), out=out, backend="spark", progress=False)
    pytest.importorskip("ray")
    before = sorted(p.name for p in (out / "runs").iterdir())
    with pytest.raises(ConnectionError, match=r"could not connect to a Ray cluster.*--backend local"):
        run_sweep(_config(), out=out, backend="ray", address="127.0.0.1:1", progress=False)
    assert sorted(p.name for p in (out / "runs").iterdir()) == before


@pytest.mark.slow
def test_ray_backend_matches_the_local_backend(tmp_path):
    pytest.importorskip("ray")
    config = _config(grid=[{"method": "mask_offset", "criterion": "eo", "lam": [0.5, 2.0]}])
    run_sweep(config, out=tmp_path / "local", workers=1, threads_per_worker=1, progress=False)
    run_sweep(config, out=tmp_path / "ray", workers=2, backend="ray", threads_per_worker=1, progress=False)
    local, ray = collect_runs(tmp_path / "local"), collect_runs(tmp_path / "ray")
    assert len(local) == len(ray) == 3
    local, ray = local.sort_values("run_id"), ray.sort_values("run_id")
    for key in ("accuracy", "dp_gap", "eo_gap", "worst_group_accuracy"):
        assert list(local[key]) == list(ray[key])


def test_pareto_front_and_hypervolume():
    points = [(0.80, 0.10), (0.85, 0.20), (0.82, 0.30), (0.70, 0.05), (0.85, 0.25)]
    assert pareto_front(points) == [(0.70, 0.05), (0.80, 0.10), (0.85, 0.20)]
    # Reference (0.7, 0.3): area = 0.10 * 0.20 + 0.05 * 0.10 (the point at 0.70 adds nothing).
    assert hypervolume(points, (0.70, 0.30)) == pytest.approx(0.1 * 0.2 + 0.05 * 0.1)
    assert hypervolume(points, (0.90, 0.30)) == 0.0


def test_matched_comparisons_interpolate_along_the_front():
    front = [(0.70, 0.05), (0.80, 0.10), (0.85, 0.20)]
    assert bias_at_accuracy(front, 0.75) == pytest.approx(0.075)
    assert bias_at_accuracy(front, 0.60) == pytest.approx(0.05)
    assert math.isnan(bias_at_accuracy(front, 0.90))
    assert accuracy_at_bias(front, 0.15) == pytest.approx(0.825)
    assert accuracy_at_bias(front, 0.50) == pytest.approx(0.85)
    assert math.isnan(accuracy_at_bias(front, 0.01))


def test_degeneracy_flags_collapsed_predictions():
    fine = {
        "overall": {"selection_rate": 0.4},
        "by_group": [{"group": "a", "count": 3, "selection_rate": 0.5}],
    }
    assert degeneracy(fine) == ""
    assert "everyone" in degeneracy({"overall": {"selection_rate": 1.0}, "by_group": []})
    group = {
        "overall": {"selection_rate": 0.3},
        "by_group": [{"group": "b", "count": 4, "selection_rate": 0.0}],
    }
    assert "group 'b'" in degeneracy(group)
    multi = {
        "classes": [0, 1, 2],
        "overall": {},
        "by_group_class": [{"group": "a", "class": 2, "count": 5, "selection_rate": 1.0}],
    }
    assert "class 2" in degeneracy(multi)


def test_the_readme_example_is_a_valid_sweep():
    from pathlib import Path

    import yaml

    text = (Path(__file__).parents[1] / "README.md").read_text()
    start = text.index("```yaml\n# arrests_sweep.yaml")
    block = text[start + len("```yaml\n") : text.index("```", start + 7)]
    config = SweepConfig.from_dict(yaml.safe_load(block))
    trials = config.trials()
    assert config.transfer and len(trials) == 2 * (16 + 4 + 2 + 1 + 4)  # two seeds
    assert {t.method for t in trials} == {"mask_offset", "advpost", "advin", "threshold", "erm"}


def test_transfer_summary_ignores_negligible_sources():
    from fairreprogram.experiments import transfer_summary

    def target(share):
        return {"share_of_reduction_kept": share}

    records = {
        "a": {
            "criterion": "demographic_parity",
            "source_reduction": 0.1,
            "targets": {"base-s1": target(0.8), "base-s2": target(0.4), "arch0-s0": target(0.9)},
        },
        "b": {
            "criterion": "demographic_parity",
            "source_reduction": 0.001,
            "targets": {"base-s1": target(9.0)},
        },
    }
    table = transfer_summary(records)
    assert list(table["target"]) == ["arch0", "other seed"]
    assert table.iloc[0]["pairs"] == 1 and table.iloc[0]["median_share"] == pytest.approx(0.9)
    row = table.iloc[1]
    assert row["pairs"] == 2 and row["median_share"] == pytest.approx(0.6) and row["pairs_at_least_0.7"] == 1
    assert transfer_summary({}).empty


def test_transfer_to_seeds_and_another_architecture(tmp_path):
    import json as _json

    config = _config(
        seeds=[0, 1],
        transfer={"architectures": [{"hidden_sizes": [4]}]},
        grid=[{"method": "mask_offset", "criterion": "dp", "lam": 1.0}],
    )
    assert SweepConfig.from_dict(config.to_dict()) == config
    summary = run_sweep(config, out=tmp_path, workers=1, threads_per_worker=1, progress=False)
    assert summary["transfers"] == 2  # a job per trigger trial (s0, s1), each on the 3 other bases
    assert sorted(p.name for p in (tmp_path / "bases").iterdir()) == [
        "arch0-s0",
        "arch0-s1",
        "base-s0",
        "base-s1",
    ]
    record = _json.loads((tmp_path / "runs" / "mask_offset-dp-lam1-s0" / "transfer.json").read_text())
    assert sorted(record["targets"]) == ["arch0-s0", "arch0-s1", "base-s1"]
    for target in record["targets"].values():
        assert 0 <= target["with_trigger"]["accuracy"] <= 1
    runs = collect_runs(tmp_path)
    assert set(runs["method"]) == {"base", "transfer_target", "mask_offset"}
    # A finished trial without transfer.json (an older release's, or interrupted) gets one.
    (tmp_path / "runs" / "mask_offset-dp-lam1-s0" / "transfer.json").unlink()
    again = run_sweep(config, out=tmp_path, workers=1, threads_per_worker=1, progress=False)
    assert (again["ran"], again["transfers"]) == (0, 1)
    assert _json.loads((tmp_path / "runs" / "mask_offset-dp-lam1-s0" / "transfer.json").read_text()) == record
    with pytest.raises(ValueError, match=r"transfer has unknown key\(s\) \['targets'\]"):
        _config(transfer={"targets": []})


def test_tune_fraction_rows_are_shared_across_methods_and_used_by_threshold(tmp_path):
    import json as _json

    from fairreprogram.experiments._trials import tune_indices

    rows = tune_indices(100, 0.2, seed=3)
    assert (
        len(rows) == 20 and list(rows) == sorted(set(rows)) and list(rows) == list(tune_indices(100, 0.2, 3))
    )
    assert len(tune_indices(100, 1.0, 3)) == 100
    config = _config(
        grid=[{"method": ["threshold", "mask_offset"], "criterion": "dp", "lam": 1.0, "tune_fraction": 0.1}]
    )
    run_sweep(config, out=tmp_path, workers=1, threads_per_worker=1, progress=False)
    for name in ("threshold-dp-frac0.1-s0", "mask_offset-dp-lam1-frac0.1-s0"):
        metrics = _json.loads((tmp_path / "runs" / name / "metrics.json").read_text())
        assert metrics["tune_examples"] == round(0.1 * 1045)


def test_the_benchmark_sweep_configs_are_valid():
    from pathlib import Path

    configs = sorted((Path(__file__).parents[1] / "bench").glob("*.yaml"))
    assert configs
    for path in configs:
        assert load_sweep_config(path).trials(), path


def _state(pid):
    """A process's (state, parent PID) from Linux /proc, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def _children(pid):
    """PIDs of the live (not zombie) processes whose parent is ``pid``."""
    from pathlib import Path

    states = {int(p.name): _state(p.name) for p in Path("/proc").glob("[0-9]*")}
    return [child for child, state in states.items() if state and state[0] != "Z" and state[1] == pid]


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="reads /proc")
def test_sigterm_stops_the_worker_processes_and_the_sweep_resumes(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    long = {**TINY, "train": {**TINY["train"], "epochs": 100000}}
    long["grid"] = [{"method": "mask_offset", "criterion": ["dp", "eo"], "lam": [1.0]}]
    path = tmp_path / "long.json"
    path.write_text(json.dumps(long))
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "fairreprogram.cli", "sweep", str(path), "--out", str(out)]
    sweep = subprocess.Popen([*command, "--workers", "2", "--threads", "1", "--quiet"])
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("runs/*/checkpoint.safetensors"))) < 2:  # both trials are training
            assert sweep.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        workers = _children(sweep.pid)
        assert len(workers) >= 2
        sweep.send_signal(signal.SIGTERM)
        assert sweep.wait(timeout=60) != 0
    finally:
        sweep.kill()
    try:
        deadline = time.monotonic() + 30
        while any(_state(pid) and _state(pid)[0] != "Z" for pid in workers):
            assert time.monotonic() < deadline, "a worker process outlived its sweep"
            time.sleep(0.2)
    finally:
        for pid in workers:
            if _state(pid):
                os.kill(pid, signal.SIGKILL)
    # Nothing finished, nothing broken: the runs are unfinished and resume from their checkpoints.
    runs = collect_runs(out, include_unfinished=True)
    assert set(runs[runs["method"] == "mask_offset"]["status"]) == {"unfinished"}


def test_every_method_runs_in_a_sweep(tmp_path):
    # Each runner gets the same keyword arguments; one that does not take them all failed
    # only when a sweep reached it (AdvIn did, after the runners gained ``rows``).
    config = _config(
        train={**TINY["train"], "epochs": 2},
        methods={"advpost": {"lr": 0.001}, "advin": {"epochs": 2}},
        grid=[
            {"method": ["mask_offset", "advpost", "advin"], "criterion": "eo", "lam": 1.0},
            {"method": "advin", "criterion": "dp", "lam": 1.0, "tune_fraction": 0.5},
            {"method": "threshold", "criterion": "eo", "tune_fraction": 0.5},
            {"method": "erm"},
        ],
    )
    summary = run_sweep(config, out=tmp_path, workers=1, threads_per_worker=1, progress=False)
    runs = collect_runs(tmp_path)
    assert summary["ran"] == len(config.trials()) == 6
    assert set(runs["method"]) == {"base", "mask_offset", "advpost", "advin", "threshold", "erm"}
    assert (runs["status"] == "finished").all() and runs["accuracy"].notna().all()


def test_a_failing_trial_does_not_stop_the_others(tmp_path, monkeypatch):
    from fairreprogram.experiments import FAILURES_NAME, SweepFailed, _trials

    config = _config(
        train={**TINY["train"], "epochs": 2},
        transfer=True,
        seeds=[0, 1],
        grid=[{"method": ["mask_offset", "advpost"], "criterion": "eo", "lam": 1.0, "seed": 0}],
    )
    real = _trials._RUNNERS["advpost"]

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setitem(_trials._RUNNERS, "advpost", broken)
    failed = r"1 of 5 jobs \(2 base models, 2 trials \(0 done before\), 1 transfer\) failed"
    with pytest.raises(SweepFailed, match=failed) as caught:
        run_sweep(config, out=tmp_path, workers=1, threads_per_worker=1, progress=False)
    assert [name for name, _ in caught.value.failures] == ["advpost-eo-lam1-s0"]
    assert "advpost-eo-lam1-s0: RuntimeError: boom" in str(caught.value)
    assert "raise RuntimeError" in (tmp_path / FAILURES_NAME).read_text()
    runs = collect_runs(tmp_path, include_unfinished=True).set_index("run_id")
    assert runs.loc["mask_offset-eo-lam1-s0", "status"] == "finished"  # ran, and got its transfer
    assert (tmp_path / "runs" / "mask_offset-eo-lam1-s0" / "transfer.json").is_file()
    assert runs.loc["advpost-eo-lam1-s0", "status"] == "unfinished"
    monkeypatch.setitem(_trials._RUNNERS, "advpost", real)  # fixed: the rerun runs only what is left
    summary = run_sweep(config, out=tmp_path, workers=1, threads_per_worker=1, progress=False)
    assert summary["ran"] == 1 and not (tmp_path / FAILURES_NAME).exists()


class _ScriptedBackend:
    """Two jobs in flight; the oldest running job finishes first; named jobs fail."""

    capacity = 2

    def __init__(self, fail=()):
        self.submitted, self.fail = [], set(fail)

    def submit(self, job):
        self.submitted.append(job.name)
        return _Outcome(job.name, job.name in self.fail)

    def wait(self, running):
        return {min(running, key=lambda handle: self.submitted.index(handle.name))}


class _Outcome:
    def __init__(self, name, fails):
        self.name, self.fails = name, fails

    def result(self):
        if self.fails:
            raise RuntimeError(f"{self.name} broke")
        return self.name


def _scripted_jobs():
    from fairreprogram.experiments._execution import _Job

    return [
        _Job("base-s0", print, {}),
        _Job("base-s1", print, {}),
        _Job("t0", print, {}, after=("base-s0",)),
        _Job("t1", print, {}, after=("base-s1",)),
        _Job("t0 (transfer)", print, {}, after=("t0", "base-s0", "base-s1"), urgent=True),
        _Job("t2", print, {}, after=("base-s0", "base-kept")),  # base-kept: finished before
    ]


def test_jobs_start_when_what_they_need_is_done_and_transfers_go_first():
    from fairreprogram.experiments._execution import _run_jobs

    backend, failures = _ScriptedBackend(), []
    with tqdm(disable=True) as bar:
        _run_jobs(backend, _scripted_jobs(), bar, failures)
    assert not failures
    # t0 starts as soon as base-s0 is done, while base-s1 still trains; once t0 and both
    # bases are done, the transfer (urgent) goes before t2, which was queued ahead of it.
    assert backend.submitted == ["base-s0", "base-s1", "t0", "t1", "t0 (transfer)", "t2"]


def test_a_failed_job_skips_only_the_jobs_that_need_it():
    from fairreprogram.experiments import DependencyFailed
    from fairreprogram.experiments._execution import _run_jobs

    backend, failures = _ScriptedBackend(fail={"base-s1"}), []
    with tqdm(disable=True) as bar:
        _run_jobs(backend, _scripted_jobs(), bar, failures)
    assert backend.submitted == ["base-s0", "base-s1", "t0", "t2"]
    assert [name for name, _ in failures] == ["base-s1", "t1", "t0 (transfer)"]
    assert isinstance(failures[0][1], RuntimeError) and not isinstance(failures[0][1], DependencyFailed)
    for _, error in failures[1:]:
        assert isinstance(error, DependencyFailed) and "needs base-s1, which failed" in str(error)


def test_a_trials_random_trigger_start_depends_on_its_seed_not_on_what_ran_before(tmp_path, noisy_start):
    import torch

    from fairreprogram.utils import load_tensors

    config = _config(
        train={**TINY["train"], "epochs": 1}, grid=[{"method": noisy_start, "criterion": "dp", "lam": 1.0}]
    )
    run = tmp_path / "runs" / config.trials()[0].trial_id
    tensors = []
    for state in (1, 2):  # the second time the base model is reused and the RNG is elsewhere
        if run.exists():
            shutil.rmtree(run)
        torch.manual_seed(state)
        run_sweep(config, out=tmp_path, workers=1, threads_per_worker=1, progress=False)
        tensors.append(load_tensors(run / "trigger" / "trigger.safetensors"))
    assert tensors[0].keys() == tensors[1].keys()
    for name in tensors[0]:
        assert torch.equal(tensors[0][name], tensors[1][name])
