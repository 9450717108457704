"""Atomic artifact writing: nothing is ever left half-written.

Every file is written to a temporary sibling in the same directory and moved into
place with :func:`os.replace`, which is atomic on POSIX and Windows. A crash or an
interrupt leaves either the old file or the new one, never a truncated mix.

:func:`directory_lock` keeps two processes from writing into one output directory at
the same time (say, the same sweep started twice).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

__all__ = [
    "LOCK_NAME",
    "DirectoryLocked",
    "atomic_path",
    "atomic_write_json",
    "atomic_write_text",
    "directory_lock",
    "load_tensors",
    "read_json",
    "save_tensors",
]


LOCK_NAME = ".lock"

_LOCKED = (
    "out={path} is in use by another {what} (process {pid} holds {lock}); nothing was changed. "
    "Wait for it to finish or stop it, or choose another output directory."
)
_NOT_A_DIR = "out={path} exists and is not a directory; expected a directory path."


class DirectoryLocked(RuntimeError):
    """Another process is writing into the output directory."""


@contextlib.contextmanager
def directory_lock(path: str | os.PathLike[str], *, what: str) -> Iterator[Path]:
    """Hold an exclusive lock on the directory ``path`` (created if missing) while the block runs.

    A second process that asks for the same directory gets :class:`DirectoryLocked`,
    naming the process that holds it, before it changes anything. The lock is
    released when the block ends or its process dies, so an interrupted run leaves
    no stale lock behind; the empty ``.lock`` file it leaves is harmless. ``what``
    names the holder's kind in the error ("sweep", "run"). The lock is advisory
    (``flock``); on a platform without ``fcntl`` the block runs unlocked.
    """
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise ValueError(_NOT_A_DIR.format(path=root))
    root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows
        yield root
        return
    lock = root / LOCK_NAME
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise DirectoryLocked(_LOCKED.format(path=root, what=what, pid=pid, lock=lock)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        try:
            yield root
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path that replaces ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates the file private (0600); give it the permissions of a normal file.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays, tensors and paths show up in configs and metrics.
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serialisable")


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as sorted, indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=True, default=_json_default, allow_nan=True)
    atomic_write_text(path, text + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file written by :func:`atomic_write_json`."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def save_tensors(
    path: str | os.PathLike[str],
    tensors: Mapping[str, torch.Tensor],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Save tensors to a safetensors file atomically (contiguous CPU copies)."""
    prepared = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(prepared, str(tmp), metadata=dict(metadata) if metadata else None)


def load_tensors(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Load a safetensors file (never a pickle)."""
    return load_file(str(path), device=str(device))
