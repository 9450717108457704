"""Fairness triggers: small learned input transformations (tabular, image, text), registered by kind."""

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
from fairreprogram.triggers._text import (
    PROMPT_INSERTIONS,
    EmbeddingPromptTrigger,
    HardPromptTrigger,
    PromptConfig,
    SoftPromptTrigger,
)

__all__ = [
    "CONFIG_NAME",
    "PROMPT_INSERTIONS",
    "WEIGHTS_NAME",
    "BorderConfig",
    "BorderTrigger",
    "EmbeddingPromptTrigger",
    "HardPromptTrigger",
    "MaskOffsetConfig",
    "MaskOffsetTrigger",
    "PatchConfig",
    "PatchTrigger",
    "PromptConfig",
    "SoftPromptTrigger",
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
