"""Image data: a decode-once uint8 cache, a torch dataset over it and CelebA / folder loaders.

Images are decoded and resized once into a single ``uint8`` file of shape
``(n, H, W, C)`` read back through :class:`numpy.memmap`; later loads map that file
and never touch the JPEGs. Splits follow the same four-way protocol as the tabular
loaders: ``train`` fits the base model, ``tune`` (carved from the training rows) the
fairness trigger, ``val`` selects models and ``test`` reports.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from fairreprogram.data._splits import SPLIT_NAMES, FourSplits, SplitFractions, stratified_assignment
from fairreprogram.utils import check_positive_int

__all__ = [
    "CELEBA_HDF5_KEYS",
    "CELEBA_IMAGE_DIR",
    "ImageCache",
    "ImageData",
    "ImageDataset",
    "load_celeba",
    "load_celeba_hdf5",
    "load_image_folder",
]

#: Folder of the aligned CelebA images inside the CelebA root.
CELEBA_IMAGE_DIR = "img_align_celeba"

_CACHE_FORMAT = 1
_CHANNELS = 3

_BAD_IMAGE_SIZE = (
    "image_size={value!r} is not valid; expected a positive integer or a (height, width) pair of "
    "positive integers."
)
_NO_FILES = "files is empty; expected at least one image file."
_MISSING_IMAGE = "Image file {path!r} does not exist; expected a readable image (listed in {source})."
_CORRUPT_IMAGE = "Image file {path!r} could not be decoded ({error}); expected a valid image file."
_NO_ROOT = "root={path!r}: no such directory; expected {expected}."
_NO_FILE = "{argument}={path!r}: no such file; expected {expected}."
_NO_LIST_FILE = "No {what} in {root!r}: looked for {candidates}; expected one of them."
_BAD_ATTR_FILE = "{path!r} is not a valid CelebA attribute file ({problem}); expected {expected}."
_UNKNOWN_ATTRIBUTE = (
    "{argument}={value!r} is not a CelebA attribute{close}; expected names from the header of "
    "{path!r}: {valid}."
)
_BAD_NAMES = "{argument}={value!r} is not valid; expected an attribute name or a non-empty list of names."
_OVERLAP = (
    "target={target!r} and sensitive={sensitive!r} share {shared}; expected disjoint attributes "
    "(a label cannot also define the groups)."
)
_BAD_TUNE = (
    "tune_fraction={fraction!r}, tune_size={size!r} is not valid; expected tune_fraction strictly "
    "between 0 and 1, or tune_size an integer >= 1 smaller than the {train} training rows."
)
_MISSING_COLUMNS = (
    "{argument}: {path!r} lacks column(s) {missing}; expected columns {expected} (found {found})."
)
_BAD_SPLIT_VALUES = (
    "split_col={column!r} holds {values}; expected only the split names {expected} (tune optional)."
)
_EMPTY_SPLIT = "Split {split!r} is empty; expected at least one row. Use more data or other fractions."
_FEW_VALUES = "{argument}={column!r} has a single value {values}; expected at least two."
_BAD_SEED = "seed={value!r} is not valid; expected an integer >= 0."
_BAD_PADDING = "crop_padding={value!r} is not valid; expected an integer >= 0."
_LENGTHS = (
    "ImageDataset arrays disagree in length: rows {rows}, y {y}, z {z}; expected one entry per row in each."
)
_ROWS_RANGE = "ImageDataset rows reach {high}; expected positions below the {n} cached images."

_NO_H5PY = "load_celeba_hdf5 needs the optional h5py package; expected it installed (pip install h5py)."
_HDF5_MISSING_KEYS = "HDF5 file {path!r} lacks the dataset(s) {missing}; expected {expected} (found {found})."
_HDF5_IMAGES = (
    "HDF5 file {path!r} has images of shape {shape} and dtype {dtype}; expected uint8 of shape (n, H, W, C)."
)


def _image_size(value: Any) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair: tuple[Any, ...] = (value, value)
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        pair = tuple(value)
    else:
        raise ValueError(_BAD_IMAGE_SIZE.format(value=value))
    ok = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in pair)
    if not ok:
        raise ValueError(_BAD_IMAGE_SIZE.format(value=value))
    return int(pair[0]), int(pair[1])


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(_BAD_SEED.format(value=seed))
    return int(seed)


# ---------------------------------------------------------------------------------------
# decode-once cache


def _decode(path: str, size: tuple[int, int], source: str) -> np.ndarray:
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
            if rgb.size != (size[1], size[0]):
                rgb = rgb.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8)
    except FileNotFoundError as error:
        raise FileNotFoundError(_MISSING_IMAGE.format(path=path, source=source)) from error
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(_CORRUPT_IMAGE.format(path=path, error=error)) from error


class ImageCache:
    """Decode a list of images once into a memory-mapped ``uint8`` array.

    The array of shape ``(n, H, W, 3)`` lives in ``<cache_dir>/<name>.uint8`` beside a
    JSON sidecar ``<name>.json`` holding the shape, the image size and a hash of the
    source paths. Both are written to temporary files and moved into place with
    :func:`os.replace`, so an interrupted build never leaves a half-written cache. When
    the sidecar matches, the file is mapped without decoding anything; a cache built
    for other files or another size is rebuilt.

    Parameters
    ----------
    files : sequence of str or Path
        Image paths, in row order.
    image_size : int or (int, int)
        Output size; an int gives square images. Images are resized bilinearly.
    cache_dir : str or Path
        Folder for the cache files (created if missing).
    name : str, default "images"
        Stem of the cache file names.
    progress : bool, default True
        Show a tqdm bar while decoding.

    Attributes
    ----------
    array : numpy.memmap
        Read-only ``uint8`` array of shape ``(n, H, W, 3)``.
    built : bool
        Whether this instance decoded the images (``False`` when the cache was reused).
    path, meta_path : pathlib.Path
        The data file and its sidecar.
    """

    def __init__(
        self,
        files: Sequence[str | Path],
        *,
        image_size: int | tuple[int, int],
        cache_dir: str | Path,
        name: str = "images",
        progress: bool = True,
    ) -> None:
        self.files = [str(Path(f)) for f in files]
        if not self.files:
            raise ValueError(_NO_FILES)
        self.image_size = _image_size(image_size)
        self.cache_dir = Path(cache_dir)
        self.path = self.cache_dir / f"{name}.uint8"
        self.meta_path = self.cache_dir / f"{name}.json"
        self.shape = (len(self.files), *self.image_size, _CHANNELS)
        self.meta = {
            "format": _CACHE_FORMAT,
            "shape": list(self.shape),
            "image_size": list(self.image_size),
            "sources_sha256": self._sources_hash(),
        }
        self.built = False
        if not self._is_valid():
            self._build(progress=progress)
            self.built = True
        self.array: np.memmap = np.memmap(self.path, dtype=np.uint8, mode="r", shape=self.shape)

    def _sources_hash(self) -> str:
        digest = hashlib.sha256()
        for item in self.files:
            digest.update(item.encode("utf-8"))
            digest.update(b"\n")
        return digest.hexdigest()

    def _is_valid(self) -> bool:
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
            size = self.path.stat().st_size
        except (OSError, ValueError):
            return False
        return bool(meta == self.meta and size == int(np.prod(self.shape)))

    def _build(self, *, progress: bool) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        suffix = f".tmp-{os.getpid()}"
        tmp_data = self.path.with_name(self.path.name + suffix)
        tmp_meta = self.meta_path.with_name(self.meta_path.name + suffix)
        try:
            out = np.memmap(tmp_data, dtype=np.uint8, mode="w+", shape=self.shape)
            bar = tqdm(self.files, desc=f"decoding {self.path.stem}", unit="img", disable=not progress)
            for row, path in enumerate(bar):
                out[row] = _decode(path, self.image_size, source=str(self.path))
            out.flush()
            del out
            tmp_meta.write_text(json.dumps(self.meta, indent=2, sort_keys=True), encoding="utf-8")
            # Data first, sidecar last: a sidecar only ever describes a complete file.
            self.meta_path.unlink(missing_ok=True)
            os.replace(tmp_data, self.path)
            os.replace(tmp_meta, self.meta_path)
        finally:
            tmp_data.unlink(missing_ok=True)
            tmp_meta.unlink(missing_ok=True)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"ImageCache(path={str(self.path)!r}, shape={self.shape}, built={self.built})"


# ---------------------------------------------------------------------------------------
# dataset


class ImageDataset(Dataset[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]):
    """``(x, y, z)`` triples over rows of a cached ``uint8`` image array.

    ``x`` is ``float32`` of shape ``(C, H, W)`` in ``[0, 1]``; ``y`` and ``z`` are
    ``int64`` scalars. Augmentation (random crop after zero padding, horizontal flip) is
    done in torch with a generator seeded from ``(seed, epoch, item)``, so it is
    reproducible and independent of DataLoader worker order; call :meth:`set_epoch`
    to draw new augmentations each epoch.

    Parameters
    ----------
    images : numpy.ndarray
        ``uint8`` array ``(N, H, W, C)``, typically :attr:`ImageCache.array`.
    rows : numpy.ndarray
        Positions in ``images`` of this dataset's items.
    y, z : numpy.ndarray
        Class and group index per item.
    num_classes, num_groups : int
        Number of classes and groups (may exceed the values present).
    augment : bool, default False
        Apply random crop and horizontal flip.
    crop_padding : int, default 4
        Zero padding before the random crop (0 disables cropping).
    flip : bool, default True
        Random horizontal flip when ``augment``.
    seed : int, default 0
        Seed of the augmentation.
    """

    def __init__(
        self,
        images: np.ndarray,
        rows: np.ndarray,
        y: np.ndarray,
        z: np.ndarray,
        *,
        num_classes: int,
        num_groups: int,
        augment: bool = False,
        crop_padding: int = 4,
        flip: bool = True,
        seed: int = 0,
    ) -> None:
        self.images = images
        self.rows = np.ascontiguousarray(rows, dtype=np.int64)
        self.y = np.ascontiguousarray(y, dtype=np.int64)
        self.z = np.ascontiguousarray(z, dtype=np.int64)
        if not len(self.rows) == len(self.y) == len(self.z):
            raise ValueError(_LENGTHS.format(rows=len(self.rows), y=len(self.y), z=len(self.z)))
        if len(self.rows) and int(self.rows.max()) >= len(images):
            raise ValueError(_ROWS_RANGE.format(high=int(self.rows.max()), n=len(images)))
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.num_groups = check_positive_int("num_groups", num_groups)
        if (
            isinstance(crop_padding, bool)
            or not isinstance(crop_padding, (int, np.integer))
            or crop_padding < 0
        ):
            raise ValueError(_BAD_PADDING.format(value=crop_padding))
        self.augment = bool(augment)
        self.crop_padding = int(crop_padding)
        self.flip = bool(flip)
        self.seed = _check_seed(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one item."""
        return (int(self.images.shape[3]), int(self.images.shape[1]), int(self.images.shape[2]))

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draw (one per epoch)."""
        self.epoch = int(epoch)

    def with_augmentation(self, augment: bool = True) -> ImageDataset:
        """Return the same rows with augmentation switched on or off."""
        return ImageDataset(
            self.images,
            self.rows,
            self.y,
            self.z,
            num_classes=self.num_classes,
            num_groups=self.num_groups,
            augment=augment,
            crop_padding=self.crop_padding,
            flip=self.flip,
            seed=self.seed,
        )

    def _augment(self, x: torch.Tensor, item: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(
            (self.seed * 1_000_003 + self.epoch * 7_919 + item) % (2**63 - 1)
        )
        draws = torch.randint(0, 2 * self.crop_padding + 1, (2,), generator=generator)
        if self.crop_padding:
            pad = self.crop_padding
            padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
            top, left = int(draws[0]), int(draws[1])
            x = padded[:, top : top + x.shape[1], left : left + x.shape[2]]
        if self.flip and bool(torch.rand((), generator=generator) < 0.5):
            x = x.flip(-1)
        return x

    def _to_tensor(self, block: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.array(block, dtype=np.uint8, copy=True))
        return tensor.movedim(-1, -3).to(torch.float32).div_(255.0)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self._to_tensor(self.images[self.rows[item]])
        if self.augment:
            x = self._augment(x, int(item)).contiguous()
        return x, torch.tensor(self.y[item]), torch.tensor(self.z[item])

    def batch(self, indices: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return stacked ``(x (B, C, H, W), y (B,), z (B,))`` for dataset positions ``indices``."""
        positions = np.asarray(indices, dtype=np.int64)
        rows = self.rows[positions]
        order = np.argsort(rows, kind="stable")
        block = np.empty((len(rows), *self.images.shape[1:]), dtype=np.uint8)
        # Sorted reads are sequential on the memory-mapped file.
        block[order] = self.images[rows[order]]
        x = self._to_tensor(block)
        if self.augment:
            x = torch.stack([self._augment(x[i], int(p)) for i, p in enumerate(positions)])
        return x, torch.from_numpy(self.y[positions].copy()), torch.from_numpy(self.z[positions].copy())

    def __repr__(self) -> str:
        return (
            f"ImageDataset(rows={len(self)}, shape={self.image_shape}, classes={self.num_classes}, "
            f"groups={self.num_groups}, augment={self.augment})"
        )


@dataclass(eq=False)
class ImageData(FourSplits[ImageDataset]):
    """Four image splits of one data set and how they were made.

    Attributes
    ----------
    train, tune, val, test : ImageDataset
        Disjoint splits; ``tune`` is carved from the training rows.
    class_names : list of str
        Class name per label index.
    group_names : list of str
        Group name per group index (intersectional groups are ``"a|b"``).
    target, sensitive : list of str
        Target and sensitive attributes (or columns).
    spec : dict
        JSON-ready description of how the data was loaded.
    files : list of str, optional
        Source file of each image row (``split.rows`` index it), where the images came
        from files.
    """

    train: ImageDataset
    tune: ImageDataset
    val: ImageDataset
    test: ImageDataset
    class_names: list[str]
    group_names: list[str]
    target: list[str]
    sensitive: list[str]
    spec: dict[str, Any] = field(default_factory=dict)
    files: list[str] | None = None

    @classmethod
    def from_splits(cls, splits: Mapping[str, ImageDataset], **fields: Any) -> ImageData:
        """Build from ``{"train": ..., "tune": ..., "val": ..., "test": ...}`` and the other fields."""
        return cls(
            train=splits["train"], tune=splits["tune"], val=splits["val"], test=splits["test"], **fields
        )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return self.train.image_shape

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}={len(split)}" for name, split in self.splits.items())
        return (
            f"ImageData(target={self.target!r}, sensitive={self.sensitive!r}, "
            f"shape={self.image_shape}, groups={self.group_names!r}, {sizes})"
        )


# ---------------------------------------------------------------------------------------
# shared helpers


#: Environment variable naming the folder for decoded-image caches.
CACHE_DIR_ENV = "FAIRREPROGRAM_CACHE_DIR"


def _default_cache_dir(root: Path) -> Path:
    # Never beside the data: data folders are often shared or read-only.
    base = os.environ.get(CACHE_DIR_ENV) or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    digest = hashlib.sha256(str(root.resolve()).encode("utf-8")).hexdigest()[:12]
    return Path(base) / "fairreprogram" / f"{root.name}-{digest}"


def _as_names(value: Any, argument: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(_BAD_NAMES.format(argument=argument, value=value))


def _bits_to_index(bits: np.ndarray) -> np.ndarray:
    # First column is the most significant bit, so sorted names follow index order.
    weights = 2 ** np.arange(bits.shape[1] - 1, -1, -1, dtype=np.int64)
    return (bits.astype(np.int64) * weights).sum(axis=1)


def _bit_names(names: list[str]) -> list[str]:
    width = len(names)
    out = []
    for index in range(2**width):
        bits = [(index >> (width - 1 - k)) & 1 for k in range(width)]
        out.append("|".join(f"{name}={bit}" for name, bit in zip(names, bits, strict=True)))
    return out


def _carve_tune(
    strata: np.ndarray, *, tune_fraction: float | None, tune_size: int | None, seed: int
) -> np.ndarray:
    """Return a boolean mask (over the training rows) of the rows moved to ``tune``."""
    total = len(strata)
    if tune_size is not None:
        ok = not isinstance(tune_size, bool) and isinstance(tune_size, (int, np.integer))
        if not ok or not 1 <= tune_size < total:
            raise ValueError(_BAD_TUNE.format(fraction=tune_fraction, size=tune_size, train=total))
        share = float(tune_size) / total
    else:
        ok = isinstance(tune_fraction, (int, float, np.number)) and not isinstance(tune_fraction, bool)
        if not ok or not 0.0 < float(tune_fraction) < 1.0:  # type: ignore[arg-type]
            raise ValueError(_BAD_TUNE.format(fraction=tune_fraction, size=tune_size, train=total))
        share = float(tune_fraction)  # type: ignore[arg-type]
    assignment = stratified_assignment(strata, fractions=(1.0 - share, share), seed=seed)
    return assignment == 1


def _make_datasets(
    images: np.ndarray,
    rows: dict[str, np.ndarray],
    *,
    y: np.ndarray,
    z: np.ndarray,
    num_classes: int,
    num_groups: int,
    seed: int,
) -> dict[str, ImageDataset]:
    out = {}
    for name in SPLIT_NAMES:
        picked = rows[name]
        if len(picked) == 0:
            raise ValueError(_EMPTY_SPLIT.format(split=name))
        out[name] = ImageDataset(
            images, picked, y[picked], z[picked], num_classes=num_classes, num_groups=num_groups, seed=seed
        )
    return out


# ---------------------------------------------------------------------------------------
# CelebA


def _find(root: Path, candidates: Sequence[str], what: str) -> Path:
    for candidate in candidates:
        if (root / candidate).is_file():
            return root / candidate
    raise FileNotFoundError(_NO_LIST_FILE.format(what=what, root=str(root), candidates=list(candidates)))


def _read_attributes(path: Path) -> pd.DataFrame:
    expected = "a count line, a header of attribute names, then 'file v1 ... vN' rows of -1/1"
    if path.suffix == ".csv":
        frame = pd.read_csv(path)
        frame = frame.rename(columns={frame.columns[0]: "image_id"})
    else:
        with path.open(encoding="utf-8") as handle:
            handle.readline()
            names = handle.readline().split()
        if not names:
            raise ValueError(
                _BAD_ATTR_FILE.format(path=str(path), problem="no header line", expected=expected)
            )
        frame = pd.read_csv(path, sep=r"\s+", skiprows=2, header=None, names=["image_id", *names])
    values = frame.iloc[:, 1:]
    if values.shape[1] == 0 or not values.isin([-1, 0, 1]).all().all():
        raise ValueError(
            _BAD_ATTR_FILE.format(path=str(path), problem="values other than -1/1", expected=expected)
        )
    return frame


def _read_partition(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        frame = pd.read_csv(path)
        frame.columns = ["image_id", "partition"]
    else:
        frame = pd.read_csv(path, sep=r"\s+", header=None, names=["image_id", "partition"])
    return frame


def _check_attributes(names: list[str], *, argument: str, valid: list[str], path: Path) -> None:
    for name in names:
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
            note = f" (close matches: {close})" if close else ""
            raise ValueError(
                _UNKNOWN_ATTRIBUTE.format(
                    argument=argument, value=name, close=note, path=str(path), valid=valid
                )
            )


def _check_names(targets: list[str], groups: list[str], *, valid: list[str], path: Path) -> None:
    _check_attributes(targets, argument="target", valid=valid, path=path)
    _check_attributes(groups, argument="sensitive", valid=valid, path=path)
    shared = sorted(set(targets) & set(groups))
    if shared:
        raise ValueError(_OVERLAP.format(target=targets, sensitive=groups, shared=shared))


def _celeba_rows(
    values: np.ndarray,
    *,
    partition: np.ndarray,
    n_targets: int,
    tune_fraction: float,
    tune_size: int | None,
    seed: int,
    limit: int | None,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Return the kept source rows (train, val, test order), split positions into them, y and z.

    ``values`` holds the target columns then the sensitive columns (-1/0/1 per row).
    """
    official = {"train": 0, "val": 1, "test": 2}
    keep = {name: np.flatnonzero(np.asarray(partition) == code) for name, code in official.items()}
    if limit is not None:
        count = check_positive_int("limit", limit)
        keep = {name: picked[:count] for name, picked in keep.items()}
    order = np.concatenate([keep["train"], keep["val"], keep["test"]])
    chosen = np.asarray(values)[order] > 0
    y = _bits_to_index(chosen[:, :n_targets])
    z = _bits_to_index(chosen[:, n_targets:])
    n_train, n_val = len(keep["train"]), len(keep["val"])
    train_rows = np.arange(n_train)
    strata = z[train_rows] * (2**n_targets) + y[train_rows]
    tune_mask = _carve_tune(strata, tune_fraction=tune_fraction, tune_size=tune_size, seed=seed)
    rows = {
        "train": train_rows[~tune_mask],
        "tune": train_rows[tune_mask],
        "val": np.arange(n_train, n_train + n_val),
        "test": np.arange(n_train + n_val, len(order)),
    }
    return order, rows, y, z


def load_celeba(
    root: str | Path,
    *,
    target: str | Sequence[str] = "Blond_Hair",
    sensitive: str | Sequence[str] = "Male",
    image_size: int | tuple[int, int] = 32,
    tune_fraction: float = 0.1,
    tune_size: int | None = None,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> ImageData:
    """Load CelebA with its official splits and a tuning set carved from the training split.

    Parameters
    ----------
    root : str or Path
        Folder holding ``img_align_celeba/`` and ``list_attr_celeba.txt`` (or ``.csv``,
        header ``image_id,<attributes>``) and ``list_eval_partition.txt`` (or ``.csv``,
        header ``image_id,partition``; 0 train, 1 val, 2 test).
    target : str or sequence of str, default "Blond_Hair"
        Label attribute(s). ``n`` attributes give ``2**n`` classes; the first attribute
        is the most significant bit of the class index.
    sensitive : str or sequence of str, default "Male"
        Group attribute(s); several give ``2**n`` intersectional groups (same bit order).
    image_size : int or (int, int), default 32
        Size the images are resized to (bilinear).
    tune_fraction : float, default 0.1
        Share of the official training rows moved to ``tune`` (stratified by group x
        label); ignored when ``tune_size`` is given.
    tune_size : int, optional
        Number of training rows moved to ``tune`` (to within a row).
    seed : int, default 0
        Seed of the tuning-set draw and of the augmentation.
    cache_dir : str or Path, optional
        Where the decoded image cache lives; default
        ``$FAIRREPROGRAM_CACHE_DIR/fairreprogram/<folder>-<hash>`` or, without that
        variable, ``~/.cache/fairreprogram/<folder>-<hash>`` (never beside the data).
    limit : int, optional
        Keep only the first ``limit`` rows of each official split (quick runs).
    progress : bool, default True
        Show a progress bar while decoding.

    Returns
    -------
    ImageData
        ``train``, ``tune``, ``val`` and ``test`` datasets; ``train`` and ``tune`` are
        disjoint parts of the official training split.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(_NO_ROOT.format(path=str(root), expected="the CelebA folder"))
    seed = _check_seed(seed)
    size = _image_size(image_size)
    attr_path = _find(root, ("list_attr_celeba.txt", "list_attr_celeba.csv"), "attribute file")
    part_path = _find(root, ("list_eval_partition.txt", "list_eval_partition.csv"), "partition file")
    targets = _as_names(target, "target")
    groups = _as_names(sensitive, "sensitive")
    attributes = _read_attributes(attr_path)
    valid = [str(c) for c in attributes.columns[1:]]
    _check_names(targets, groups, valid=valid, path=attr_path)
    partition = _read_partition(part_path)
    frame = attributes.merge(partition, on="image_id", how="inner", validate="one_to_one")
    order, rows, y, z = _celeba_rows(
        frame[[*targets, *groups]].to_numpy(),
        partition=frame["partition"].to_numpy(),
        n_targets=len(targets),
        tune_fraction=tune_fraction,
        tune_size=tune_size,
        seed=seed,
        limit=limit,
    )
    frame = frame.iloc[order].reset_index(drop=True)
    num_classes, num_groups = 2 ** len(targets), 2 ** len(groups)
    directory = Path(cache_dir) if cache_dir is not None else _default_cache_dir(root)
    files = [str(root / CELEBA_IMAGE_DIR / name) for name in frame["image_id"].astype(str)]
    cache = ImageCache(
        files, image_size=size, cache_dir=directory, name=f"celeba-{size[0]}x{size[1]}", progress=progress
    )
    datasets = _make_datasets(
        cache.array, rows, y=y, z=z, num_classes=num_classes, num_groups=num_groups, seed=seed
    )
    spec = {
        "loader": "celeba",
        "root": str(root),
        "target": targets,
        "sensitive": groups,
        "image_size": list(size),
        "tune_fraction": tune_fraction,
        "tune_size": tune_size,
        "seed": seed,
        "limit": limit,
        "cache": str(cache.path),
    }
    return ImageData.from_splits(
        datasets,
        class_names=_bit_names(targets),
        group_names=_bit_names(groups),
        target=targets,
        sensitive=groups,
        spec=spec,
        files=cache.files,
    )


#: Datasets a CelebA HDF5 file must hold (see :func:`load_celeba_hdf5`).
CELEBA_HDF5_KEYS: tuple[str, ...] = ("images", "attributes", "attribute_names", "partition")


def _resize_array(images: np.ndarray, size: tuple[int, int], *, progress: bool) -> np.ndarray:
    if images.shape[1:3] == size:
        return images
    out = np.empty((len(images), *size, images.shape[3]), dtype=np.uint8)
    for row in tqdm(range(len(images)), desc="resizing", unit="img", disable=not progress):
        picture = Image.fromarray(images[row].squeeze(-1) if images.shape[3] == 1 else images[row])
        resized = np.asarray(picture.resize((size[1], size[0]), Image.Resampling.BILINEAR), dtype=np.uint8)
        out[row] = resized.reshape(out.shape[1:])
    return out


def load_celeba_hdf5(
    path: str | Path,
    *,
    target: str | Sequence[str] = "Blond_Hair",
    sensitive: str | Sequence[str] = "Male",
    image_size: int | tuple[int, int] | None = None,
    tune_fraction: float = 0.1,
    tune_size: int | None = None,
    seed: int = 0,
    limit: int | None = None,
    progress: bool = True,
) -> ImageData:
    """Load CelebA from one HDF5 file (already decoded images), with the official splits.

    The file must hold the datasets ``images`` (``uint8``, ``(n, H, W, C)``),
    ``attributes`` (integers ``(n, k)``, -1/1 or 0/1), ``attribute_names`` (``k``
    strings) and ``partition`` (``(n,)``, 0 train, 1 val, 2 test). The kept images are
    read into memory (no cache is written) and resized when ``image_size`` differs
    from the stored size. Needs the optional ``h5py`` package.

    Parameters
    ----------
    path : str or Path
        The HDF5 file.
    target, sensitive, tune_fraction, tune_size, seed, limit, progress
        As in :func:`load_celeba`.
    image_size : int or (int, int), optional
        Output size; default the stored size.

    Returns
    -------
    ImageData
        The four splits; ``tune`` is carved from the official training rows.
    """
    try:
        import h5py
    except ImportError as error:
        raise ImportError(_NO_H5PY) from error
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            _NO_FILE.format(argument="path", path=str(path), expected="a CelebA HDF5 file")
        )
    seed = _check_seed(seed)
    targets = _as_names(target, "target")
    groups = _as_names(sensitive, "sensitive")
    with h5py.File(path, "r") as handle:
        missing = [key for key in CELEBA_HDF5_KEYS if key not in handle]
        if missing:
            raise ValueError(
                _HDF5_MISSING_KEYS.format(
                    path=str(path),
                    missing=missing,
                    expected=list(CELEBA_HDF5_KEYS),
                    found=sorted(handle.keys()),
                )
            )
        stored = handle["images"]
        if stored.ndim != 4 or stored.dtype != np.uint8:
            raise ValueError(_HDF5_IMAGES.format(path=str(path), shape=stored.shape, dtype=stored.dtype))
        valid = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in handle["attribute_names"][()]]
        _check_names(targets, groups, valid=valid, path=path)
        columns = [valid.index(name) for name in [*targets, *groups]]
        order, rows, y, z = _celeba_rows(
            np.asarray(handle["attributes"][()])[:, columns],
            partition=np.asarray(handle["partition"][()]).reshape(-1),
            n_targets=len(targets),
            tune_fraction=tune_fraction,
            tune_size=tune_size,
            seed=seed,
            limit=limit,
        )
        # h5py fancy indexing needs increasing positions.
        ascending = np.argsort(order, kind="stable")
        images = np.empty((len(order), *stored.shape[1:]), dtype=np.uint8)
        images[ascending] = stored[order[ascending]]
    size = (int(images.shape[1]), int(images.shape[2])) if image_size is None else _image_size(image_size)
    images = _resize_array(images, size, progress=progress)
    datasets = _make_datasets(
        images, rows, y=y, z=z, num_classes=2 ** len(targets), num_groups=2 ** len(groups), seed=seed
    )
    spec = {
        "loader": "celeba_hdf5",
        "path": str(path),
        "target": targets,
        "sensitive": groups,
        "image_size": list(size),
        "tune_fraction": tune_fraction,
        "tune_size": tune_size,
        "seed": seed,
        "limit": limit,
    }
    return ImageData.from_splits(
        datasets,
        class_names=_bit_names(targets),
        group_names=_bit_names(groups),
        target=targets,
        sensitive=groups,
        spec=spec,
    )


# ---------------------------------------------------------------------------------------
# folder + CSV


def _encode(values: pd.Series, argument: str, column: str) -> tuple[np.ndarray, list[str]]:
    keys = values.astype(str).str.strip()
    names = sorted(set(keys))
    if len(names) < 2:
        raise ValueError(_FEW_VALUES.format(argument=argument, column=column, values=names))
    lookup = {name: i for i, name in enumerate(names)}
    return keys.map(lookup).to_numpy(dtype=np.int64), names


def _folder_rows(
    frame: pd.DataFrame,
    *,
    split_col: str | None,
    strata: np.ndarray,
    fractions: SplitFractions,
    seed: int,
) -> dict[str, np.ndarray]:
    if split_col is None:
        shares = tuple(fractions.to_dict()[name] for name in SPLIT_NAMES)
        assignment = stratified_assignment(strata, fractions=shares, seed=seed)
        return {name: np.flatnonzero(assignment == i) for i, name in enumerate(SPLIT_NAMES)}
    labels = frame[split_col].astype(str).str.strip().str.lower()
    unknown = sorted(set(labels) - set(SPLIT_NAMES))
    if unknown:
        raise ValueError(
            _BAD_SPLIT_VALUES.format(column=split_col, values=unknown, expected=list(SPLIT_NAMES))
        )
    rows = {name: np.flatnonzero(labels.to_numpy() == name) for name in SPLIT_NAMES}
    if len(rows["tune"]) == 0 and len(rows["train"]):
        train = rows["train"]
        share = fractions.tune / (fractions.train + fractions.tune)
        mask = _carve_tune(strata[train], tune_fraction=share, tune_size=None, seed=seed)
        rows["train"], rows["tune"] = train[~mask], train[mask]
    return rows


def load_image_folder(
    root: str | Path,
    csv: str | Path,
    *,
    file_col: str = "file",
    label_col: str = "label",
    sensitive_col: str | Sequence[str] = "sensitive",
    split_col: str | None = None,
    image_size: int | tuple[int, int] = 32,
    fractions: SplitFractions = SplitFractions(),  # noqa: B008
    seed: int = 0,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> ImageData:
    """Load a folder of images described by a CSV of file, label and sensitive columns.

    Parameters
    ----------
    root : str or Path
        Folder the ``file_col`` paths are relative to.
    csv : str or Path
        The CSV; a relative path is looked up in ``root`` first.
    file_col, label_col : str
        Columns holding the image path and the label (classes are the sorted values).
    sensitive_col : str or sequence of str, default "sensitive"
        Group column(s); several give intersectional groups named ``"a|b"``.
    split_col : str, optional
        Column of official split names (``train``, ``tune``, ``val``, ``test``). Without
        ``tune`` rows, ``tune`` is carved from ``train`` with the ``fractions`` ratio.
        Without the column, rows are split at random, stratified by group x label.
    image_size : int or (int, int), default 32
        Size the images are resized to (bilinear).
    fractions : SplitFractions, default SplitFractions()
        Split shares for the random split.
    seed : int, default 0
        Seed of the split and of the augmentation.
    cache_dir : str or Path, optional
        Cache folder; default as in :func:`load_celeba`.
    progress : bool, default True
        Show a progress bar while decoding.

    Returns
    -------
    ImageData
        The four splits.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(_NO_ROOT.format(path=str(root), expected="the image folder"))
    csv_path = Path(csv)
    if not csv_path.is_absolute() and (root / csv_path).is_file():
        csv_path = root / csv_path
    if not csv_path.is_file():
        raise FileNotFoundError(_NO_FILE.format(argument="csv", path=str(csv), expected="a CSV file"))
    seed = _check_seed(seed)
    size = _image_size(image_size)
    split_fractions = SplitFractions.coerce(fractions)
    groups = _as_names(sensitive_col, "sensitive_col")
    frame = pd.read_csv(csv_path)
    needed = [file_col, label_col, *groups, *([split_col] if split_col is not None else [])]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(
            _MISSING_COLUMNS.format(
                argument="csv",
                path=str(csv_path),
                missing=missing,
                expected=needed,
                found=list(frame.columns),
            )
        )
    y, class_names = _encode(frame[label_col], "label_col", label_col)
    group_keys = frame[groups].astype(str).agg(lambda row: "|".join(s.strip() for s in row), axis=1)
    z, group_names = _encode(group_keys, "sensitive_col", "|".join(groups))
    strata = z * len(class_names) + y
    rows = _folder_rows(frame, split_col=split_col, strata=strata, fractions=split_fractions, seed=seed)
    directory = Path(cache_dir) if cache_dir is not None else _default_cache_dir(root)
    files = [str(root / name) for name in frame[file_col].astype(str)]
    cache = ImageCache(
        files,
        image_size=size,
        cache_dir=directory,
        name=f"folder-{csv_path.stem}-{size[0]}x{size[1]}",
        progress=progress,
    )
    datasets = _make_datasets(
        cache.array, rows, y=y, z=z, num_classes=len(class_names), num_groups=len(group_names), seed=seed
    )
    spec = {
        "loader": "image_folder",
        "root": str(root),
        "csv": str(csv_path),
        "file_col": file_col,
        "label_col": label_col,
        "sensitive_col": groups,
        "split_col": split_col,
        "image_size": list(size),
        "fractions": split_fractions.to_dict(),
        "seed": seed,
        "cache": str(cache.path),
    }
    return ImageData.from_splits(
        datasets,
        class_names=class_names,
        group_names=group_names,
        target=[label_col],
        sensitive=groups,
        spec=spec,
        files=cache.files,
    )
