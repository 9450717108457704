"""Sweep configs (YAML or JSON): a grid of trials over methods, criteria, lambdas, seeds, ...

A config names the data, the base model, default training options and a list of grid
blocks. Each block is a Cartesian product of its lists; the sweep is the union of the
blocks times the seeds. ``SweepConfig.trials()`` expands it into :class:`Trial` s,
each with a stable identifier that names its run directory.

Example (see the README for the whole worked example)::

    name: adult
    data: {spec: "adult:{data_dir}/adult", sensitive: sex}
    base: {hidden_sizes: [64, 64], train: {epochs: 30}}
    train: {epochs: 30, lr: 0.02, max_accuracy_drop: 0.02}
    methods: {advpost: {lr: 0.001}, advin: {lr: 0.001}}
    seeds: [0, 1, 2]
    grid:
      - {method: [mask_offset, advpost], criterion: [dp, eo], lam: [0.1, 1, 10]}
      - {method: threshold, criterion: [dp, eo]}
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fairreprogram.engine import TrainConfig, parse_criterion
from fairreprogram.triggers import available_triggers, get_trigger_class

__all__ = [
    "BASELINE_METHODS",
    "SweepConfig",
    "Trial",
    "available_methods",
    "load_sweep_config",
]

BASELINE_METHODS = ("erm", "advin", "advpost", "threshold")
"""Methods that are not triggers: ERM (the base model), AdvIn, AdvPost, fairlearn's ThresholdOptimizer."""

_TOP_KEYS = ("name", "data", "base", "train", "methods", "seeds", "grid", "transfer", "analysis")
_BLOCK_KEYS = ("method", "criterion", "lam", "seed", "tune_fraction", "trigger_options", "train")
_BASE_KEYS = ("hidden_sizes", "dropout", "arch", "model", "max_length", "train")
_ANALYSIS_KEYS = ("matched_accuracy_drop", "reference_accuracy_drop", "matched_bias")

_UNKNOWN_KEY = "{where} has unknown key(s) {bad}; expected some of {known}."
_UNKNOWN_METHOD = "{where}: method={value!r} is not valid; expected one of {known}."
_EMPTY_GRID = "grid={grid!r} is empty; expected at least one block with at least one method."
_BAD_TYPE = "{where}={value!r} is not valid; expected {expected}."
_NOT_FOUND = "config={path} does not exist; expected a YAML or JSON sweep config file."
_BAD_SUFFIX = "config={path} is not valid; expected a .yaml, .yml or .json file."
_UNKNOWN_OPTION = "{where}: trigger {method!r} has no option(s) {bad}; expected some of {known}."
_NEEDS_DATA = "data={value!r} is not valid; expected a mapping with a 'spec' string (e.g. 'arrests')."


def available_methods() -> list[str]:
    """Every method name a grid block accepts: the baselines and every trigger kind."""
    return [*BASELINE_METHODS, *available_triggers()]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _check_keys(where: str, mapping: Mapping[str, Any], known: Sequence[str]) -> None:
    if not isinstance(mapping, Mapping):
        raise ValueError(_BAD_TYPE.format(where=where, value=mapping, expected="a mapping"))
    bad = sorted(set(mapping) - set(known))
    if bad:
        raise ValueError(_UNKNOWN_KEY.format(where=where, bad=bad, known=list(known)))


def _product(options: Mapping[str, Any]) -> list[dict[str, Any]]:
    keys = sorted(options)
    return [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*(_as_list(options[k]) for k in keys))
    ]


@dataclasses.dataclass(frozen=True)
class Trial:
    """One run of a sweep.

    Attributes
    ----------
    method
        A baseline name (``erm``, ``advin``, ``advpost``, ``threshold``) or a trigger kind.
    criterion
        ``demographic_parity`` / ``equalized_odds``; ``None`` for ERM.
    lam
        Adversary weight (``None`` for ERM and the threshold optimiser).
    seed
        Seed of the base model and of this run.
    tune_fraction
        Share of the tuning split used (data-efficiency studies).
    trigger_options
        Options of the trigger config (trigger methods only).
    train
        :class:`~fairreprogram.engine.TrainConfig` options of this run.
    """

    method: str
    criterion: str | None
    lam: float | None
    seed: int
    tune_fraction: float = 1.0
    trigger_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    train: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def is_trigger(self) -> bool:
        """Whether the method is a trigger kind (as opposed to a baseline)."""
        return self.method not in BASELINE_METHODS

    @property
    def base_id(self) -> str:
        """Identifier of the base model this trial needs."""
        return f"base-s{self.seed}"

    @property
    def trial_id(self) -> str:
        """Stable, readable identifier (the run directory name)."""
        parts = [self.method]
        if self.criterion is not None:
            parts.append(parse_criterion(self.criterion).short)
        if self.lam is not None:
            parts.append(f"lam{self.lam:g}")
        if self.tune_fraction != 1.0:
            parts.append(f"frac{self.tune_fraction:g}")
        parts.append(f"s{self.seed}")
        if self.trigger_options or self.train:
            blob = json.dumps({"t": dict(self.trigger_options), "o": dict(self.train)}, sort_keys=True)
            parts.append(hashlib.sha1(blob.encode()).hexdigest()[:8])
        return "-".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out = dataclasses.asdict(self)
        out["trigger_options"] = dict(self.trigger_options)
        out["train"] = dict(self.train)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trial:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A validated sweep config (see the module docstring for the format)."""

    name: str
    data: Mapping[str, Any]
    base: Mapping[str, Any]
    train: Mapping[str, Any]
    methods: Mapping[str, Mapping[str, Any]]
    seeds: tuple[int, ...]
    grid: tuple[Mapping[str, Any], ...]
    transfer: bool = False
    transfer_architectures: tuple[Mapping[str, Any], ...] = ()
    analysis: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SweepConfig:
        """Validate a parsed config; every error names the key, the value and what was expected."""
        _check_keys("config", raw, _TOP_KEYS)
        data = raw.get("data")
        if not isinstance(data, Mapping) or not isinstance(data.get("spec"), str):
            raise ValueError(_NEEDS_DATA.format(value=data))
        base = raw.get("base", {})
        _check_keys("base", base, _BASE_KEYS)
        train = dict(raw.get("train", {}))
        TrainConfig().replace(**train)
        methods = raw.get("methods", {})
        _check_keys("methods", methods, available_methods())
        for options in methods.values():
            TrainConfig().replace(**{**train, **options})
        seeds = tuple(_as_list(raw.get("seeds", [0])))
        for seed in seeds:
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise ValueError(_BAD_TYPE.format(where="seeds", value=seed, expected="integers >= 0"))
        grid = raw.get("grid")
        if not isinstance(grid, list) or not grid:
            raise ValueError(_EMPTY_GRID.format(grid=grid))
        analysis = raw.get("analysis", {})
        _check_keys("analysis", analysis, _ANALYSIS_KEYS)
        config = cls(
            name=str(raw.get("name", "sweep")),
            data=dict(data),
            base=dict(base),
            train=train,
            methods={k: dict(v) for k, v in methods.items()},
            seeds=seeds,
            grid=tuple(dict(b) for b in grid),
            transfer=bool(raw.get("transfer", False)),
            transfer_architectures=_transfer_architectures(raw.get("transfer", False)),
            analysis=dict(analysis),
        )
        if not config.trials():
            raise ValueError(_EMPTY_GRID.format(grid=grid))
        return config

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the normalised config recorded in the sweep directory)."""
        out = dataclasses.asdict(self)
        out["seeds"] = list(self.seeds)
        out["grid"] = [dict(b) for b in self.grid]
        architectures = out.pop("transfer_architectures")
        if architectures:
            out["transfer"] = {"architectures": [dict(a) for a in architectures]}
        return out

    def _block_trials(self, index: int, block: Mapping[str, Any]) -> list[Trial]:
        where = f"grid[{index}]"
        _check_keys(where, block, _BLOCK_KEYS)
        methods = _as_list(block.get("method", []))
        trials = []
        for method in methods:
            if method not in available_methods():
                raise ValueError(_UNKNOWN_METHOD.format(where=where, value=method, known=available_methods()))
            criteria = [None] if method == "erm" else _as_list(block.get("criterion", "equalized_odds"))
            lams = (
                [None]
                if method in ("erm", "threshold")
                else _as_list(block.get("lam", self.train.get("lam", 1.0)))
            )
            fractions = _as_list(block.get("tune_fraction", 1.0))
            seeds = _as_list(block.get("seed", list(self.seeds)))
            trigger_grid = (
                _product(block.get("trigger_options", {})) if method not in BASELINE_METHODS else [{}]
            )
            train_grid = _product(block.get("train", {}))
            if method not in BASELINE_METHODS:
                cls = get_trigger_class(method)
                known = [f.name for f in dataclasses.fields(cls.config_class)] + list(cls.build_options)
                for opts in trigger_grid:
                    bad = sorted(set(opts) - set(known))
                    if bad:
                        raise ValueError(
                            _UNKNOWN_OPTION.format(where=where, method=method, bad=bad, known=known)
                        )
            for crit, lam, frac, seed, opts, train in itertools.product(
                criteria, lams, fractions, seeds, trigger_grid, train_grid
            ):
                crit_value = parse_criterion(crit).value if crit is not None else None
                if not isinstance(frac, (int, float)) or not 0 < frac <= 1:
                    raise ValueError(
                        _BAD_TYPE.format(
                            where=f"{where}.tune_fraction", value=frac, expected="a number in (0, 1]"
                        )
                    )
                merged = {**self.train, **self.methods.get(method, {}), **train}
                TrainConfig().replace(**merged)
                trials.append(
                    Trial(
                        method=method,
                        criterion=crit_value,
                        lam=float(lam) if lam is not None else None,
                        seed=int(seed),
                        tune_fraction=float(frac),
                        trigger_options=opts,
                        train=train,
                    )
                )
        return trials

    def trials(self) -> list[Trial]:
        """Every trial of the sweep, without duplicates, in grid order."""
        seen: dict[str, Trial] = {}
        for index, block in enumerate(self.grid):
            for trial in self._block_trials(index, block):
                seen.setdefault(trial.trial_id, trial)
        return list(seen.values())

    def train_config(self, trial: Trial) -> TrainConfig:
        """The full training config of ``trial`` (defaults < method options < block options)."""
        options = {**self.train, **self.methods.get(trial.method, {}), **trial.train, "seed": trial.seed}
        if trial.criterion is not None:
            options["criterion"] = trial.criterion
        if trial.lam is not None:
            options["lam"] = trial.lam
        return TrainConfig().replace(**options)


def _transfer_architectures(value: Any) -> tuple[Mapping[str, Any], ...]:
    """``transfer: true`` (other seeds) or ``{architectures: [{hidden_sizes: ...}, ...]}`` (and more)."""
    if isinstance(value, bool):
        return ()
    _check_keys("transfer", value, ("architectures",))
    architectures = value.get("architectures", [])
    if not isinstance(architectures, list):
        raise ValueError(
            _BAD_TYPE.format(
                where="transfer.architectures", value=architectures, expected="a list of base-model options"
            )
        )
    for index, arch in enumerate(architectures):
        _check_keys(f"transfer.architectures[{index}]", arch, _BASE_KEYS)
    return tuple(dict(a) for a in architectures)


def load_sweep_config(path: str | os.PathLike[str]) -> SweepConfig:
    """Read and validate a ``.yaml`` / ``.yml`` / ``.json`` sweep config."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(_NOT_FOUND.format(path=file))
    text = file.read_text(encoding="utf-8")
    if file.suffix in (".yaml", ".yml"):
        import yaml

        raw = yaml.safe_load(text)
    elif file.suffix == ".json":
        raw = json.loads(text)
    else:
        raise ValueError(_BAD_SUFFIX.format(path=file))
    return SweepConfig.from_dict(raw or {})
