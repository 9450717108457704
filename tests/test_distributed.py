import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from fairreprogram.utils import load_tensors

HERE = Path(__file__).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch(out: Path, nproc: int) -> None:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        str(HERE / "_distributed_worker.py"),
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    _launch(tmp_path / "two.safetensors", 2)
    _launch(tmp_path / "one.safetensors", 1)
    with safe_open(str(tmp_path / "two.safetensors"), framework="pt") as f:
        assert f.metadata()["world_size"] == "2"
    two, one = load_tensors(tmp_path / "two.safetensors"), load_tensors(tmp_path / "one.safetensors")
    assert set(two) == set(one)
    moved = False
    for key in one:
        assert torch.allclose(two[key], one[key], atol=1e-5), key
        moved |= not torch.allclose(one[key], torch.zeros_like(one[key]))
    assert moved
