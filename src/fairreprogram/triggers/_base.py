"""The :class:`Trigger` base class, its config base and the registry of trigger kinds."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import torch
from torch import nn

from fairreprogram._version import __version__
from fairreprogram.utils import atomic_write_json, load_tensors, read_json, save_tensors

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "CONFIG_NAME",
    "PLOT_PARAMETER_LIMIT",
    "WEIGHTS_NAME",
    "Trigger",
    "TriggerConfig",
    "available_triggers",
    "build_trigger",
    "get_trigger_class",
    "register_trigger",
]

CONFIG_NAME = "trigger_config.json"
WEIGHTS_NAME = "trigger.safetensors"

_DUPLICATE_KIND = "trigger kind {kind!r} is already registered by {owner}; kinds must be unique."
_UNKNOWN_KIND = "trigger={kind!r} is not a registered trigger kind; expected one of {known}."
_WRONG_KIND = (
    "{path} holds a trigger of kind {found!r}, but {cls} loads kind {expected!r}; "
    "use Trigger.from_pretrained to load any kind."
)
_UNKNOWN_OPTION = "{kind} trigger got unknown option(s) {bad}; expected some of {known}."
_NOT_A_TRIGGER_DIR = "{path} is not a saved trigger: {name} is missing."
_SHAPE_MISMATCH = (
    "{kind} trigger was built for inputs of shape {expected} (per example), but got inputs of "
    "shape {found}; build or load a trigger for this input size."
)

_TOO_MANY_TO_PLOT = "{kind} trigger: {count:,} trainable parameters{shapes}; too many to draw one by one."
_NOTHING_TO_PLOT = "{kind} trigger: no trainable parameters to draw."

# Above this many trainable scalars the default plot is a text note, not a bar chart.
PLOT_PARAMETER_LIMIT = 2000

_REGISTRY: dict[str, type[Trigger]] = {}

T = TypeVar("T", bound="Trigger")


@dataclasses.dataclass(frozen=True)
class TriggerConfig:
    """Base class of trigger configs: a frozen dataclass that round-trips through JSON."""

    def to_dict(self) -> dict[str, Any]:
        """Return the config as a JSON-ready dict."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            out[field.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, kind: str = "") -> TriggerConfig:
        """Build a config from a dict, refusing unknown keys."""
        known = [f.name for f in dataclasses.fields(cls)]
        bad = sorted(set(data) - set(known))
        if bad:
            raise ValueError(_UNKNOWN_OPTION.format(kind=kind or cls.__name__, bad=bad, known=known))
        converted = {}
        for field in dataclasses.fields(cls):
            if field.name in data:
                value = data[field.name]
                converted[field.name] = tuple(value) if isinstance(value, list) else value
        return cls(**converted)


def register_trigger(kind: str) -> Callable[[type[T]], type[T]]:
    """Class decorator that registers a :class:`Trigger` subclass under ``kind``."""

    def decorator(cls: type[T]) -> type[T]:
        if kind in _REGISTRY:
            raise ValueError(_DUPLICATE_KIND.format(kind=kind, owner=_REGISTRY[kind].__name__))
        cls.kind = kind
        _REGISTRY[kind] = cls
        return cls

    return decorator


def available_triggers() -> list[str]:
    """Return the registered trigger kinds, sorted."""
    return sorted(_REGISTRY)


def get_trigger_class(kind: str) -> type[Trigger]:
    """Return the trigger class registered under ``kind``."""
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise ValueError(_UNKNOWN_KIND.format(kind=kind, known=available_triggers())) from None


def build_trigger(kind: str, *, input_shape: Sequence[int] | None = None, **options: Any) -> Trigger:
    """Build a trigger of ``kind`` from keyword options of its config.

    With ``input_shape`` (per example, e.g. ``(num_features,)`` or ``(3, 32, 32)``)
    the trigger fills in its size options from it (see :meth:`Trigger.shape_options`).
    """
    cls = get_trigger_class(kind)
    if input_shape is not None:
        options = {**cls.shape_options(tuple(input_shape)), **options}
    return cls(cls.config_class.from_dict(options, kind=kind))


class Trigger(nn.Module):
    """An input-agnostic fairness trigger attached to every input of a frozen model.

    Subclasses set ``config_class``, register themselves with :func:`register_trigger`
    and implement :meth:`forward` (inputs in, model inputs out) and
    :meth:`input_shape` (the per-example input shape they were built for, or ``None``
    when any shape is accepted).
    """

    kind: ClassVar[str] = ""
    config_class: ClassVar[type[TriggerConfig]] = TriggerConfig
    size_option: ClassVar[str | None] = None
    """The config option that sets the trigger's size (the CLI's ``--trigger-size``)."""
    build_options: ClassVar[tuple[str, ...]] = ()
    """Options that the model turns into config options when it builds the trigger (text: words)."""

    def __init__(self, config: TriggerConfig) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"config={config!r} is not valid for {type(self).__name__}; "
                f"expected a {self.config_class.__name__}."
            )
        self.config = config

    @classmethod
    def shape_options(cls, input_shape: tuple[int, ...]) -> dict[str, Any]:
        """Config options implied by the per-example input shape (none by default)."""
        return {}

    def input_shape(self) -> tuple[int, ...] | None:
        """Per-example input shape this trigger was built for (``None``: any)."""
        return None

    def check_input_shape(self, shape: Sequence[int]) -> None:
        """Raise ``ValueError`` if per-example ``shape`` does not fit this trigger."""
        expected = self.input_shape()
        if expected is not None and tuple(shape) != tuple(expected):
            raise ValueError(
                _SHAPE_MISMATCH.format(kind=self.kind, expected=tuple(expected), found=tuple(shape))
            )

    def num_trainable_parameters(self) -> int:
        """Number of trainable scalars in the trigger."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def plot(self, ax: Axes, *, feature_names: Sequence[str] | None = None) -> None:
        """Draw the trigger's learned parameters on ``ax`` (matplotlib ``Axes``).

        The default draws a bar chart of the flattened trainable parameters, or a
        text note with their shapes when there are more than
        :data:`PLOT_PARAMETER_LIMIT`. Trigger kinds override this with a picture that
        fits their input (per-feature bars, an image, token embeddings, ...).
        ``feature_names`` label the x axis when there is one parameter per name.
        """
        named = [(n, p.detach().flatten().cpu()) for n, p in self.named_parameters() if p.requires_grad]
        count = sum(int(t.numel()) for _, t in named)
        if count == 0 or count > PLOT_PARAMETER_LIMIT:
            shapes = ", ".join(f"{n} {tuple(p.shape)}" for n, p in self.named_parameters() if p.requires_grad)
            text = _TOO_MANY_TO_PLOT.format(kind=self.kind, count=count, shapes=f" ({shapes})")
            text = text if count else _NOTHING_TO_PLOT.format(kind=self.kind)
            ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes)
            ax.set_axis_off()
            return
        values = torch.cat([t for _, t in named]).numpy()
        ax.bar(range(count), values, width=1.0, color="tab:blue")
        ax.axhline(0.0, color="0.3", linewidth=0.8)
        if feature_names is not None and len(feature_names) == count:
            ax.set_xticks(range(count), list(feature_names), rotation=90, fontsize=7)
        ax.set_xlabel("trainable parameter (flattened: " + ", ".join(n for n, _ in named) + ")")
        ax.set_ylabel("value")
        ax.set_title(f"{self.kind} trigger ({count} trainable parameters)")

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, trainable_parameters={self.num_trainable_parameters()}"

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Save the config (sorted JSON with version and kind) and the parameters."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {name: t for name, t in self.state_dict().items()}
        save_tensors(out / WEIGHTS_NAME, tensors, metadata={"kind": self.kind})
        atomic_write_json(
            out / CONFIG_NAME,
            {"kind": self.kind, "library_version": __version__, "config": self.config.to_dict()},
        )
        return out

    @classmethod
    def from_pretrained(
        cls: type[T],
        directory: str | os.PathLike[str],
        *,
        input_shape: Sequence[int] | None = None,
        map_location: str | torch.device = "cpu",
    ) -> T:
        """Load a trigger saved by :meth:`save_pretrained`.

        Called on :class:`Trigger` it loads any kind; called on a subclass it refuses
        other kinds. ``input_shape`` (per example), if given, is checked against the
        shape the trigger was built for.
        """
        path = Path(directory)
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            if not (path / name).is_file():
                raise FileNotFoundError(_NOT_A_TRIGGER_DIR.format(path=path, name=name))
        saved = read_json(path / CONFIG_NAME)
        kind = saved.get("kind", "")
        if cls is not Trigger and kind != cls.kind:
            raise ValueError(_WRONG_KIND.format(path=path, found=kind, cls=cls.__name__, expected=cls.kind))
        target = get_trigger_class(kind)
        trigger = target(target.config_class.from_dict(saved.get("config", {}), kind=kind))
        trigger.load_state_dict(load_tensors(path / WEIGHTS_NAME, device=map_location))
        if input_shape is not None:
            trigger.check_input_shape(input_shape)
        return trigger.to(map_location)  # type: ignore[return-value]
