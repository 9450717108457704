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
from fairreprogram.triggers._mask_offset import MaskOffsetConfig, MaskOffsetTrigger

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "MaskOffsetConfig",
    "MaskOffsetTrigger",
    "Trigger",
    "TriggerConfig",
    "available_triggers",
    "build_trigger",
    "get_trigger_class",
    "register_trigger",
]
