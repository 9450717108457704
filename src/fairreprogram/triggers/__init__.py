"""Fairness triggers: small learned input transformations, registered by kind."""

from fairreprogram.triggers._base import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    Trigger,
    TriggerConfig,
    available_triggers,
    build_trigger,
    get_trigger_class,
    register_trigger,
)
from fairreprogram.triggers._image import (
    BorderConfig,
    BorderTrigger,
    PatchConfig,
    PatchTrigger,
    SparseConfig,
    SparseTrigger,
    render_trigger_examples,
)
from fairreprogram.triggers._mask_offset import MaskOffsetConfig, MaskOffsetTrigger

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "BorderConfig",
    "BorderTrigger",
    "MaskOffsetConfig",
    "MaskOffsetTrigger",
    "PatchConfig",
    "PatchTrigger",
    "SparseConfig",
    "SparseTrigger",
    "Trigger",
    "TriggerConfig",
    "available_triggers",
    "build_trigger",
    "get_trigger_class",
    "register_trigger",
    "render_trigger_examples",
]
