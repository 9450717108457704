"""Dataset spec strings (``"arrests"``, ``"adult:PATH"``, ...) and the loader registry."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fairreprogram.data._builtin import load_adult, load_arrests, load_compas
from fairreprogram.data._digits import load_coloured_digits
from fairreprogram.data._images import ImageData, load_celeba, load_celeba_hdf5, load_image_folder
from fairreprogram.data._tabular import TabularData, load_csv, load_tabular
from fairreprogram.data._text import TextData, load_civilcomments, load_text_csv

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
_UNKNOWN_OPTIONS = "spec={spec!r} takes no option(s) {bad}; expected some of {known}."

#: What :func:`load_dataset` returns: tabular, image or text splits.
AnyData = TabularData | ImageData | TextData


@dataclass(frozen=True)
class _DatasetEntry:
    loader: Callable[..., AnyData]
    needs_path: bool
    description: str


_REGISTRY: dict[str, _DatasetEntry] = {}


def register_dataset(
    name: str,
    loader: Callable[..., AnyData],
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


def _load_celeba_any(path: str, **options: Any) -> ImageData:
    """CelebA from its folder or from the original repository's single HDF5 file."""
    if Path(path).suffix.lower() in (".h5", ".hdf5"):
        options.pop("cache_dir", None)  # the HDF5 form is already decoded
        return load_celeba_hdf5(path, **options)
    return load_celeba(path, **options)


_load_celeba_any.__signature__ = inspect.signature(load_celeba)  # type: ignore[attr-defined]


def _load_image_csv(path: str, *, root: str | None = None, **options: Any) -> ImageData:
    """A folder of images described by the CSV at ``path`` (files relative to ``root``)."""
    return load_image_folder(Path(path).parent if root is None else root, path, **options)


_load_image_csv.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter("path", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("root", inspect.Parameter.KEYWORD_ONLY, default=None),
        *[
            p
            for p in inspect.signature(load_image_folder).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        ],
    ],
    return_annotation=ImageData,
)


register_dataset(
    "celeba",
    _load_celeba_any,
    needs_path=True,
    description="a CelebA folder (img_align_celeba/, list_attr_celeba) or its .h5 file",
)
register_dataset(
    "images",
    _load_image_csv,
    needs_path=True,
    description="a CSV of file, label and sensitive columns (files relative to its folder or root=)",
)
register_dataset("digits", load_coloured_digits, needs_path=False, description="coloured MNIST digits")
register_dataset(
    "text",
    load_text_csv,
    needs_path=True,
    description="a CSV or TSV of text, label and sensitive columns (or identity terms)",
)
register_dataset(
    "civilcomments",
    load_civilcomments,
    needs_path=True,
    description="WILDS all_data_with_identities.csv or its folder",
)

# A CSV spec with a text column is a text data set: `--data csv:PATH --text-col text`.
_TEXT_OPTION = "text_col"


def _accepted_options(loader: Callable[..., Any]) -> list[str] | None:
    """Keyword options ``loader`` accepts (``None``: any).

    A tabular loader's ``**kwargs`` go to :func:`load_tabular`, so its options count
    too; another loader with ``**kwargs`` is taken to accept anything.
    """
    parameters = list(inspect.signature(loader).parameters.values())
    names = [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return names
    if inspect.signature(loader).return_annotation not in (TabularData, "TabularData"):
        return None
    forwarded = inspect.signature(load_tabular).parameters.values()
    return sorted({*names, *(p.name for p in forwarded if p.kind is inspect.Parameter.KEYWORD_ONLY)})


def _parse(spec: str) -> tuple[str, str | None]:
    name, sep, path = spec.partition(":")
    name = name.strip().lower()
    if name in _REGISTRY:
        return name, (path.strip() or None) if sep else None
    if spec.strip().lower().endswith(".csv"):
        return "csv", spec.strip()
    raise ValueError(_UNKNOWN_SCHEME.format(spec=spec, known=available_datasets()))


def load_dataset(spec: str, **kwargs: Any) -> AnyData:
    """Load a data set from a spec string.

    Parameters
    ----------
    spec : str
        Tabular: ``"arrests"``, ``"adult:PATH"``, ``"compas:PATH"``, ``"csv:PATH"`` or
        a bare path ending in ``.csv``. Images: ``"celeba:PATH"`` (folder or ``.h5``),
        ``"images:CSV"`` (a folder of images described by a CSV) and ``"digits"``
        (coloured MNIST digits). Text: ``"text:PATH"`` (a CSV or TSV of texts; also
        ``"csv:PATH"`` given ``text_col=``) and ``"civilcomments:PATH"`` (WILDS). See
        :func:`available_datasets`.
    **kwargs
        Options of the loader (and of :func:`load_tabular`). ``load_dataset(**data.spec)``
        rebuilds the splits of a ``TabularData`` loaded by name.

    Returns
    -------
    TabularData, ImageData or TextData
        The splits.

    Raises
    ------
    ValueError
        For an unknown spec, a missing or unexpected path, or an option the loader
        does not take (the message lists the options it takes).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(_NO_SPEC.format(spec=spec))
    name, path = _parse(spec)
    if name == "csv" and _TEXT_OPTION in kwargs:
        name = "text"
    entry = _REGISTRY[name]
    if entry.needs_path and path is None:
        raise ValueError(_NEEDS_PATH.format(spec=spec, name=name, description=entry.description))
    if not entry.needs_path and path is not None:
        raise ValueError(_TAKES_NO_PATH.format(spec=spec, name=name))
    known = _accepted_options(entry.loader)
    bad = sorted(set(kwargs) - set(known)) if known is not None else []
    if bad:
        raise ValueError(_UNKNOWN_OPTIONS.format(spec=spec, bad=bad, known=sorted(set(known or []))))
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
