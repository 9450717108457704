import json
import os
import sys

import numpy as np
import pytest
import torch

from fairreprogram.utils import (
    LOCK_NAME,
    DirectoryLocked,
    _resources,
    atomic_write_json,
    check_finite_array,
    check_non_negative,
    directory_lock,
    load_tensors,
    peak_memory_mb,
    save_tensors,
    start_memory_window,
)


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "m.json"
    atomic_write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


def test_json_is_sorted_and_handles_numpy(tmp_path):
    atomic_write_json(tmp_path / "x.json", {"b": np.float32(0.5), "a": np.arange(2)})
    assert (tmp_path / "x.json").read_text().index('"a"') < (tmp_path / "x.json").read_text().index('"b"')


def test_tensors_round_trip(tmp_path):
    save_tensors(tmp_path / "t.safetensors", {"w": torch.arange(3.0)})
    assert torch.equal(load_tensors(tmp_path / "t.safetensors")["w"], torch.arange(3.0))


def test_validation_messages_name_the_value():
    with pytest.raises(ValueError, match=r"X contains 1 non-finite value\(s\).*index \(1, 0\)"):
        check_finite_array("X", np.array([[0.0], [np.inf]]))
    with pytest.raises(ValueError, match=r"lam=-2 is not valid"):
        check_non_negative("lam", -2)


def test_atomic_files_get_normal_permissions(tmp_path):
    import os

    atomic_write_json(tmp_path / "p.json", {})
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "p.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_directory_lock_refuses_a_second_holder_until_released(tmp_path):
    import os

    out = tmp_path / "out"
    with directory_lock(out, what="sweep"):
        assert out.is_dir()
        held = rf"out={out} is in use by another sweep \(process {os.getpid()} "
        with pytest.raises(DirectoryLocked, match=held), directory_lock(out, what="sweep"):
            pass
    with directory_lock(out, what="run"):  # released: free again
        pass
    (tmp_path / "file").write_text("x")
    with (
        pytest.raises(ValueError, match="exists and is not a directory"),
        directory_lock(tmp_path / "file", what="run"),
    ):
        pass


def test_directory_lock_dies_with_its_process(tmp_path):
    import subprocess
    import sys

    # Another process takes the lock the way directory_lock does, then is killed.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(tmp_path / LOCK_NAME)!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "os.write(fd, f'{os.getpid()}'.encode())\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(DirectoryLocked, match=rf"process {holder.pid} holds"),
            directory_lock(tmp_path, what="run"),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()
    with directory_lock(tmp_path, what="run"):  # no stale lock after the holder died
        pass


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and os.access("/proc/self/clear_refs", os.W_OK)),
    reason="the kernel's peak-memory mark can be reset only on Linux with a writable /proc",
)
def test_memory_window_forgets_an_earlier_peak():
    block = np.ones(40_000_000)  # 320 MB, written so that it is resident
    earlier = peak_memory_mb()
    del block
    assert start_memory_window() == "run"
    assert peak_memory_mb() < earlier - 200  # the freed block no longer counts
    again = np.ones(40_000_000)
    assert peak_memory_mb() > earlier - 50  # a new peak inside the window does
    del again


def test_memory_window_falls_back_to_the_process_peak(monkeypatch, tmp_path):
    monkeypatch.setattr(_resources, "_CLEAR_REFS", tmp_path / "missing" / "clear_refs")
    assert start_memory_window() == "process"
    assert peak_memory_mb() > 0
