"""Image data: the decode-once cache, the dataset and the CelebA / folder loaders (fake data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import PIL.Image
import pytest
import torch

from fairreprogram.data import ImageCache, ImageDataset, load_celeba, load_celeba_hdf5, load_image_folder

ATTRIBUTES = ["Attractive", "Blond_Hair", "Male", "Smiling", "Young"]
N_IMAGES = 40


def _write_jpegs(folder: Path, names: list[str], *, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        PIL.Image.new("RGB", (10, 12), colour).save(folder / name, format="JPEG")


def _fake_celeba(root: Path, *, csv: bool = False) -> Path:
    names = [f"{i + 1:06d}.jpg" for i in range(N_IMAGES)]
    _write_jpegs(root / "img_align_celeba", names)
    rng = np.random.default_rng(1)
    values = rng.choice([-1, 1], size=(N_IMAGES, len(ATTRIBUTES)))
    values[:4, :] = [[1, 1, 1, 1, 1], [-1, -1, -1, -1, -1], [1, 1, -1, 1, -1], [-1, -1, 1, -1, 1]]
    partition = [0] * 24 + [1] * 8 + [2] * 8
    if csv:
        frame = pd.DataFrame(values, columns=ATTRIBUTES)
        frame.insert(0, "image_id", names)
        frame.to_csv(root / "list_attr_celeba.csv", index=False)
        pd.DataFrame({"image_id": names, "partition": partition}).to_csv(
            root / "list_eval_partition.csv", index=False
        )
        return root
    lines = [str(N_IMAGES), " ".join(ATTRIBUTES)]
    lines += [f"{name} " + " ".join(f"{v:2d}" for v in row) for name, row in zip(names, values, strict=True)]
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text(
        "\n".join(f"{name} {p}" for name, p in zip(names, partition, strict=True)) + "\n"
    )
    return root


@pytest.fixture
def celeba(tmp_path: Path) -> Path:
    return _fake_celeba(tmp_path / "celeba")


def _load(root: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    options: dict[str, object] = {"image_size": 8, "cache_dir": root / "cache", "progress": False}
    options.update(kwargs)
    return load_celeba(root, **options)  # type: ignore[arg-type]


def _forbid_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Image.open called although the cache should be reused")

    monkeypatch.setattr(PIL.Image, "open", refuse)


def test_celeba_splits_and_items(celeba: Path) -> None:
    data = _load(celeba, tune_fraction=0.25)
    sizes = {name: len(split) for name, split in data.splits.items()}
    assert sizes == {"train": 18, "tune": 6, "val": 8, "test": 8}
    assert not set(data.train.rows) & set(data.tune.rows)
    assert set(data.train.rows) | set(data.tune.rows) == set(range(24))
    assert data.files is not None and len(data.files) == 40
    assert Path(data.files[data.test.rows[0]]).parent.name == "img_align_celeba"
    x, y, z = data.train[0]
    assert x.shape == (3, 8, 8) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert y.dtype == torch.int64 and z.dtype == torch.int64
    assert data.class_names == ["Blond_Hair=0", "Blond_Hair=1"]
    assert data.group_names == ["Male=0", "Male=1"] and data.train.num_groups == 2
    xb, yb, zb = data.test.batch([0, 3, 1])
    assert xb.shape == (3, 3, 8, 8)
    assert torch.equal(xb[1], data.test[3][0]) and int(yb[2]) == int(data.test[1][1])
    assert int(zb[0]) == int(data.test[0][2])


def test_celeba_tune_size_and_limit(celeba: Path) -> None:
    data = _load(celeba, tune_size=4, limit=6)
    assert [len(s) for s in data.splits.values()] == [2, 4, 6, 6]
    assert data.spec["limit"] == 6


def test_celeba_csv_variant_matches_txt(tmp_path: Path) -> None:
    txt = _load(_fake_celeba(tmp_path / "txt"))
    csv = _load(_fake_celeba(tmp_path / "csv", csv=True))
    for name in ("train", "tune", "val", "test"):
        np.testing.assert_array_equal(txt.splits[name].y, csv.splits[name].y)
        np.testing.assert_array_equal(txt.splits[name].z, csv.splits[name].z)
        np.testing.assert_array_equal(txt.splits[name].rows, csv.splits[name].rows)


def test_cache_created_once_then_reused(celeba: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _load(celeba)
    cache_files = sorted(p.name for p in (celeba / "cache").iterdir())
    assert cache_files == ["celeba-8x8.json", "celeba-8x8.uint8"]
    _forbid_decoding(monkeypatch)
    second = _load(celeba)
    assert sorted(p.name for p in (celeba / "cache").iterdir()) == cache_files
    assert torch.equal(first.val[2][0], second.val[2][0])


def test_cache_rebuilt_for_other_size(tmp_path: Path) -> None:
    names = [f"{i}.jpg" for i in range(3)]
    _write_jpegs(tmp_path / "img", names)
    files = [tmp_path / "img" / n for n in names]
    first = ImageCache(files, image_size=8, cache_dir=tmp_path / "c", progress=False)
    assert first.built and first.array.shape == (3, 8, 8, 3)
    again = ImageCache(files, image_size=8, cache_dir=tmp_path / "c", progress=False)
    assert not again.built
    other = ImageCache(files, image_size=(6, 4), cache_dir=tmp_path / "c", progress=False)
    assert other.built and other.array.shape == (3, 6, 4, 3)
    fewer = ImageCache(files[:2], image_size=(6, 4), cache_dir=tmp_path / "c", progress=False)
    assert fewer.built and fewer.array.shape == (2, 6, 4, 3)
    assert not list((tmp_path / "c").glob("*.tmp-*"))


def test_multi_target_and_intersectional_groups(celeba: Path) -> None:
    data = _load(celeba, target=["Blond_Hair", "Smiling"], sensitive=["Male", "Young"])
    assert data.num_classes == 4 and data.train.num_classes == 4
    assert data.class_names[2] == "Blond_Hair=1|Smiling=0"
    assert data.num_groups == 4 and data.group_names[1] == "Male=0|Young=1"
    # Row 0 is all ones; row 2 is Blond, Smiling, not Male, not Young; both in train or tune.
    labels = {
        int(r): (int(y), int(z))
        for s in (data.train, data.tune)
        for r, y, z in zip(s.rows, s.y, s.z, strict=True)
    }
    assert labels[0] == (3, 3) and labels[2] == (3, 0) and labels[3] == (0, 3)


def test_unknown_attribute_suggests_close_match(celeba: Path) -> None:
    with pytest.raises(ValueError, match="Blond_Hair") as info:
        _load(celeba, target="Blonde_Hair")
    assert "Blonde_Hair" in str(info.value) and "close matches" in str(info.value)


def test_target_equal_to_sensitive_raises(celeba: Path) -> None:
    with pytest.raises(ValueError, match="disjoint"):
        _load(celeba, target="Male", sensitive="Male")
    with pytest.raises(ValueError, match="disjoint"):
        _load(celeba, target=["Smiling", "Male"], sensitive=["Male", "Young"])


def test_missing_image_names_the_file(celeba: Path) -> None:
    (celeba / "img_align_celeba" / "000007.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"000007\.jpg"):
        _load(celeba)
    assert not list((celeba / "cache").glob("*.uint8*"))


def test_corrupt_image_names_the_file(celeba: Path) -> None:
    (celeba / "img_align_celeba" / "000011.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(ValueError, match=r"000011\.jpg"):
        _load(celeba)


def _fake_folder(root: Path, *, with_split: bool) -> Path:
    names = [f"img_{i}.jpg" for i in range(N_IMAGES)]
    _write_jpegs(root / "pics", names, seed=3)
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(
        {
            "file": [f"pics/{n}" for n in names],
            "label": rng.choice(["cat", "dog"], size=N_IMAGES),
            "sensitive": rng.choice(["a", "b"], size=N_IMAGES),
        }
    )
    if with_split:
        frame["split"] = ["train"] * 20 + ["val"] * 10 + ["test"] * 10
    frame.to_csv(root / "meta.csv", index=False)
    return root


def test_image_folder_random_split(tmp_path: Path) -> None:
    root = _fake_folder(tmp_path / "folder", with_split=False)
    data = load_image_folder(root, "meta.csv", image_size=(6, 5), cache_dir=tmp_path / "c", progress=False)
    sizes = [len(s) for s in data.splits.values()]
    assert sum(sizes) == N_IMAGES and sizes == [20, 8, 4, 8]
    all_rows = np.concatenate([s.rows for s in data.splits.values()])
    assert len(set(all_rows.tolist())) == N_IMAGES
    assert data.class_names == ["cat", "dog"] and data.group_names == ["a", "b"]
    assert data.train[0][0].shape == (3, 6, 5)


def test_image_folder_official_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRREPROGRAM_CACHE_DIR", str(tmp_path / "cache"))
    root = _fake_folder(tmp_path / "folder", with_split=True)
    data = load_image_folder(root, root / "meta.csv", split_col="split", image_size=4, progress=False)
    assert len(data.val) == 10 and len(data.test) == 10 and len(data.train) + len(data.tune) == 20
    assert len(data.tune) > 0
    assert not (root / ".fairreprogram-cache").exists()  # the cache never goes beside the data
    assert any((tmp_path / "cache" / "fairreprogram").iterdir())


def test_image_folder_missing_column(tmp_path: Path) -> None:
    root = _fake_folder(tmp_path / "folder", with_split=False)
    with pytest.raises(ValueError, match="group"):
        load_image_folder(root, "meta.csv", sensitive_col="group", cache_dir=tmp_path / "c", progress=False)


def test_augmentation_shape_range_and_seed(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 8, 8, 3), dtype=np.uint8)
    rows, y, z = np.arange(6), np.zeros(6, dtype=np.int64), np.arange(6) % 2

    def make(seed: int) -> ImageDataset:
        return ImageDataset(images, rows, y, z, num_classes=2, num_groups=2, augment=True, seed=seed)

    plain = ImageDataset(images, rows, y, z, num_classes=2, num_groups=2)
    first, second, other = make(0), make(0), make(5)
    xs = torch.stack([first[i][0] for i in range(6)])
    assert xs.shape == (6, 3, 8, 8) and float(xs.min()) >= 0.0 and float(xs.max()) <= 1.0
    assert torch.equal(xs, torch.stack([second[i][0] for i in range(6)]))
    assert torch.equal(xs, first.batch(list(range(6)))[0])
    assert not torch.equal(xs, torch.stack([other[i][0] for i in range(6)]))
    assert not torch.equal(xs, plain.batch(list(range(6)))[0])
    first.set_epoch(1)
    assert not torch.equal(xs, torch.stack([first[i][0] for i in range(6)]))


def test_bad_image_size_raises(celeba: Path) -> None:
    with pytest.raises(ValueError, match="image_size"):
        _load(celeba, image_size=(0, 4))


def _fake_hdf5(path: Path, *, drop: str | None = None) -> Path:
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(2)
    arrays = {
        "images": rng.integers(0, 256, size=(N_IMAGES, 12, 10, 3), dtype=np.uint8),
        "attributes": rng.choice([-1, 1], size=(N_IMAGES, len(ATTRIBUTES))),
        "attribute_names": np.array([a.encode() for a in ATTRIBUTES]),
        "partition": np.array([0] * 24 + [1] * 8 + [2] * 8),
    }
    with h5py.File(path, "w") as handle:
        for key, value in arrays.items():
            if key != drop:
                handle.create_dataset(key, data=value)
    return path


def test_celeba_hdf5(tmp_path: Path) -> None:
    path = _fake_hdf5(tmp_path / "celeba.h5")
    stored = load_celeba_hdf5(path, tune_size=4, progress=False)
    assert [len(s) for s in stored.splits.values()] == [20, 4, 8, 8]
    assert stored.image_shape == (3, 12, 10)
    resized = load_celeba_hdf5(
        path, image_size=8, target=["Smiling", "Young"], limit=5, tune_size=1, progress=False
    )
    assert resized.image_shape == (3, 8, 8) and resized.num_classes == 4
    assert [len(s) for s in resized.splits.values()] == [4, 1, 5, 5]
    x, _, _ = resized.val[4]
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_celeba_hdf5_missing_keys(tmp_path: Path) -> None:
    path = _fake_hdf5(tmp_path / "celeba.h5", drop="partition")
    with pytest.raises(ValueError, match="partition"):
        load_celeba_hdf5(path, progress=False)


def test_celeba_sweep_runs_image_triggers_and_baselines(tmp_path: Path) -> None:
    from fairreprogram.experiments import SweepConfig, collect_runs, run_sweep

    root = _fake_celeba(tmp_path / "celeba")
    config = SweepConfig.from_dict(
        {
            "name": "celeba-tiny",
            "data": {
                "spec": f"celeba:{root}",
                "target": "Blond_Hair",
                "sensitive": "Male",
                "image_size": 8,
                "tune_fraction": 0.3,
                "cache_dir": str(tmp_path / "cache"),
                "progress": False,
            },
            "base": {"arch": "resnet20", "train": {"epochs": 1, "batch_size": 8}},
            "train": {"epochs": 1, "batch_size": 8, "max_accuracy_drop": 1.0},
            "grid": [
                {
                    "method": ["border", "patch", "advpost"],
                    "criterion": "eo",
                    "lam": 1.0,
                    "trigger_options": {},
                },
                {"method": "threshold", "criterion": "dp"},
            ],
        }
    )
    run_sweep(config, out=tmp_path / "sweep", workers=1, threads_per_worker=1, progress=False)
    runs = collect_runs(tmp_path / "sweep")
    assert set(runs["method"]) == {"base", "border", "patch", "advpost", "threshold"}
    border = runs[runs["method"] == "border"].iloc[0]
    assert border["trainable_parameters"] == 3 * (8 * 8 - 2 * 2)  # the 3-pixel frame
    assert (tmp_path / "sweep" / "runs" / "border-eo-lam1-s0" / "trigger" / "trigger.safetensors").is_file()
    from fairreprogram.experiments import write_report

    html, markdown = write_report(tmp_path / "sweep")
    text = html.read_text()
    assert "border" in text and "patch" in text and text.count("data:image/png;base64") >= 2
    assert "border" in markdown.read_text()


def test_coloured_digits_shortcut_only_in_training() -> None:
    from fairreprogram.data import DIGIT_COLOURS, load_coloured_digits

    data = load_coloured_digits(seed=1, train_correlation=0.95, eval_correlation=0.5)
    assert data.image_shape == (3, 28, 28) and data.group_names == list(DIGIT_COLOURS)
    assert [len(s) for s in data.splits.values()] == [2500, 1000, 500, 1000]
    rows = np.concatenate([s.rows for s in data.splits.values()])
    assert len(np.unique(rows)) == len(rows)
    assert abs(np.mean(data.train.y == data.train.z) - 0.95) < 0.02
    assert abs(np.mean(data.test.y == data.test.z) - 0.5) < 0.05
    x, _, z = data.train.batch(np.arange(50))
    red = x[:, 0].sum(dim=(1, 2)) > x[:, 1].sum(dim=(1, 2))
    assert torch.equal(red, z == 0)  # the colour is what z says
    again = load_coloured_digits(seed=1, train_correlation=0.95)
    assert np.array_equal(again.train.rows, data.train.rows) and np.array_equal(again.train.z, data.train.z)


def test_coloured_digits_bad_arguments() -> None:
    from fairreprogram.data import load_coloured_digits

    with pytest.raises(ValueError, match=r"train_correlation=1\.5.*\[0, 1\]"):
        load_coloured_digits(train_correlation=1.5)
    with pytest.raises(ValueError, match=r"sizes=\(4000, 1000, 500, 1000\).*at most 5000"):
        load_coloured_digits(sizes=(4000, 1000, 500, 1000))


def test_load_dataset_routes_image_specs_and_names_bad_options(tmp_path: Path) -> None:
    from fairreprogram.data import ImageData, load_dataset

    root = _fake_celeba(tmp_path / "celeba")
    data = load_dataset(f"celeba:{root}", image_size=8, cache_dir=tmp_path / "c", progress=False)
    assert isinstance(data, ImageData) and data.image_shape == (3, 8, 8)
    with pytest.raises(ValueError, match=r"takes no option\(s\) \['hidden'\].*image_size"):
        load_dataset(f"celeba:{root}", hidden=3)
    with pytest.raises(ValueError, match=r"'arrests' takes no option\(s\) \['image_size'\]"):
        load_dataset("arrests", image_size=8)
    folder = _fake_folder(tmp_path / "folder", with_split=False)
    data = load_dataset(
        f"images:{folder / 'meta.csv'}", image_size=4, cache_dir=tmp_path / "c", progress=False
    )
    assert data.image_shape == (3, 4, 4) and data.class_names == ["cat", "dog"]


def test_engine_asks_subsets_of_image_datasets_for_whole_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    from torch.utils.data import Subset

    from fairreprogram.engine._batches import ShardedBatchSampler, iterate_batches

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(10, 4, 4, 3), dtype=np.uint8)
    dataset = ImageDataset(
        images, np.arange(10), np.arange(10) % 2, np.zeros(10), num_classes=2, num_groups=1
    )
    nested = Subset(Subset(dataset, [5, 3, 8, 1, 9]), [2, 0, 4])  # rows 8, 5, 9

    def per_item(*args: object) -> None:
        raise AssertionError("per-example indexing")

    monkeypatch.setattr(ImageDataset, "__getitem__", per_item)
    sampler = ShardedBatchSampler(3, batch_size=3, shuffle=False)
    (x, y, _), *rest = list(iterate_batches(nested, sampler))
    expected = dataset.batch([8, 5, 9])
    assert not rest and torch.equal(x, expected[0]) and torch.equal(y, expected[1])
