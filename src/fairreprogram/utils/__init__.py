"""Small shared helpers: atomic artifact I/O and input validation."""

from fairreprogram.utils._io import (
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    load_tensors,
    read_json,
    save_tensors,
)
from fairreprogram.utils._resources import peak_memory_mb
from fairreprogram.utils._tensors import as_class_logits, batch_size_of, to_device
from fairreprogram.utils._validation import (
    FairnessWarning,
    check_choice,
    check_finite_array,
    check_non_negative,
    check_positive_int,
    check_probability,
)

__all__ = [
    "FairnessWarning",
    "as_class_logits",
    "atomic_path",
    "atomic_write_json",
    "atomic_write_text",
    "batch_size_of",
    "check_choice",
    "check_finite_array",
    "check_non_negative",
    "check_positive_int",
    "check_probability",
    "load_tensors",
    "peak_memory_mb",
    "read_json",
    "save_tensors",
    "to_device",
]
