"""Dataset spec strings (``"arrests"``, ``"adult:PATH"``, ...) and the loader registry."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fairreprogram.data._builtin import load_adult, load_arrests, load_compas
from fairreprogram.data._tabular import TabularData, load_csv

__all__ = [
    "DATA_DIR_ENV",
    "available_datasets",
    "default_data_dir",
    "load_dataset",
    "register_dataset",
]

#: Environment variable that overrides :func:`default_data_dir`.
DATA_DIR_ENV = "FAIRREPROGRAM_DATA_DIR"

_UNKNOWN_SCHEME = (
    "spec={spec!r} is not a known dataset; expected one of {known} (as 'name' or "
    "'name:PATH'), or a path ending in .csv."
)
_NEEDS_PATH = "spec={spec!r} names no path; expected '{name}:PATH' ({description})."
_TAKES_NO_PATH = "spec={spec!r} gives a path, but {name!r} takes none; expected {name!r}."
_NO_SPEC = (
    "spec={spec!r} is not valid; expected a dataset spec string. Data loaded from an "
    "in-memory frame (spec None) cannot be reloaded by name; call load_tabular() on the "
    "frame with the recorded options."
)
_DUPLICATE = "name={name!r} is already registered; expected a new name or overwrite=True."
_BAD_NAME = "name={name!r} is not valid; expected a non-empty name without ':'."


@dataclass(frozen=True)
class _DatasetEntry:
    loader: Callable[..., TabularData]
    needs_path: bool
    description: str


_REGISTRY: dict[str, _DatasetEntry] = {}


def register_dataset(
    name: str,
    loader: Callable[..., TabularData],
    *,
    needs_path: bool,
    description: str = "",
    overwrite: bool = False,
) -> None:
    """Make ``loader`` reachable as ``load_dataset(name)`` or ``load_dataset("name:PATH")``.

    Parameters
    ----------
    name : str
        Scheme of the spec string.
    loader : callable
        Called as ``loader(path, **kwargs)`` when ``needs_path``, else ``loader(**kwargs)``.
    needs_path : bool
        Whether the spec must carry a path.
    description : str, optional
        What the path is, for error messages.
    overwrite : bool, default False
        Replace an existing entry instead of refusing it.
    """
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(_BAD_NAME.format(name=name))
    if name in _REGISTRY and not overwrite:
        raise ValueError(_DUPLICATE.format(name=name))
    _REGISTRY[name] = _DatasetEntry(loader=loader, needs_path=needs_path, description=description)


def available_datasets() -> list[str]:
    """Return the registered dataset names, sorted."""
    return sorted(_REGISTRY)


register_dataset("arrests", load_arrests, needs_path=False, description="scikit-lego arrests")
register_dataset("adult", load_adult, needs_path=True, description="a folder with adult.data and adult.test")
register_dataset(
    "compas",
    load_compas,
    needs_path=True,
    description="compas-scores-two-years.csv or its folder",
)
register_dataset("csv", load_csv, needs_path=True, description="a CSV file with a header row")


def _parse(spec: str) -> tuple[str, str | None]:
    name, sep, path = spec.partition(":")
    name = name.strip().lower()
    if name in _REGISTRY:
        return name, (path.strip() or None) if sep else None
    if spec.strip().lower().endswith(".csv"):
        return "csv", spec.strip()
    raise ValueError(_UNKNOWN_SCHEME.format(spec=spec, known=available_datasets()))


def load_dataset(spec: str, **kwargs: Any) -> TabularData:
    """Load a data set from a spec string.

    Parameters
    ----------
    spec : str
        ``"arrests"``, ``"adult:PATH"``, ``"compas:PATH"``, ``"csv:PATH"`` or a bare
        path ending in ``.csv``; see :func:`available_datasets`.
    **kwargs
        Options of the loader (and of :func:`load_tabular`). ``load_dataset(**data.spec)``
        rebuilds the splits of a ``TabularData`` loaded by name.

    Returns
    -------
    TabularData
        The encoded splits.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(_NO_SPEC.format(spec=spec))
    name, path = _parse(spec)
    entry = _REGISTRY[name]
    if entry.needs_path and path is None:
        raise ValueError(_NEEDS_PATH.format(spec=spec, name=name, description=entry.description))
    if not entry.needs_path and path is not None:
        raise ValueError(_TAKES_NO_PATH.format(spec=spec, name=name))
    return entry.loader(path, **kwargs) if entry.needs_path else entry.loader(**kwargs)


def _project_root(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return None


def default_data_dir() -> Path:
    """Return the folder that benchmarks read real data from.

    ``$FAIRREPROGRAM_DATA_DIR`` when set; otherwise ``<project root>/../shared/data``,
    where the project root is the first folder at or above the working directory that
    holds a ``pyproject.toml`` (the working directory itself when there is none).
    """
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override).expanduser()
    cwd = Path.cwd()
    root = _project_root(cwd) or cwd
    return (root / ".." / "shared" / "data").resolve()
