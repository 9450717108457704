"""Small shared helpers: atomic artifact I/O, output-directory locks and input validation."""

from fairreprogram.utils._io import (
    LOCK_NAME,
    DirectoryLocked,
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    directory_lock,
    load_tensors,
    read_json,
    save_tensors,
)
from fairreprogram.utils._resources import peak_memory_mb, start_memory_window
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
    "LOCK_NAME",
    "DirectoryLocked",
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
    "directory_lock",
    "load_tensors",
    "peak_memory_mb",
    "read_json",
    "save_tensors",
    "start_memory_window",
    "to_device",
]
