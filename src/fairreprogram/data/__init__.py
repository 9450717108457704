"""Tabular data: loaders, the train-only preprocessor and the four-way split protocol.

``train`` fits the base model, ``tune`` the fairness trigger, ``val`` selects models
and ``test`` reports. See ``docs/data.md``.
"""

from fairreprogram.data._builtin import (
    ADULT_COLUMNS,
    ADULT_DROPPED,
    COMPAS_FEATURES,
    filter_compas,
    load_adult,
    load_arrests,
    load_compas,
    read_adult,
)
from fairreprogram.data._preprocess import MISSING_CATEGORY, TabularPreprocessor
from fairreprogram.data._registry import (
    DATA_DIR_ENV,
    available_datasets,
    default_data_dir,
    load_dataset,
    register_dataset,
)
from fairreprogram.data._splits import SPLIT_NAMES, SplitFractions, TabularSplit
from fairreprogram.data._tabular import TabularData, load_csv, load_tabular

__all__ = [
    "ADULT_COLUMNS",
    "ADULT_DROPPED",
    "COMPAS_FEATURES",
    "DATA_DIR_ENV",
    "MISSING_CATEGORY",
    "SPLIT_NAMES",
    "SplitFractions",
    "TabularData",
    "TabularPreprocessor",
    "TabularSplit",
    "available_datasets",
    "default_data_dir",
    "filter_compas",
    "load_adult",
    "load_arrests",
    "load_compas",
    "load_csv",
    "load_dataset",
    "load_tabular",
    "read_adult",
    "register_dataset",
]
