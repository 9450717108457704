"""Tabular, image and text data: loaders, the train-only preprocessor and the four-way split protocol.

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
from fairreprogram.data._digits import DIGIT_COLOURS, load_coloured_digits
from fairreprogram.data._images import (
    CELEBA_HDF5_KEYS,
    CELEBA_IMAGE_DIR,
    ImageCache,
    ImageData,
    ImageDataset,
    load_celeba,
    load_celeba_hdf5,
    load_image_folder,
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
from fairreprogram.data._text import (
    CIVILCOMMENTS_IDENTITIES,
    TextData,
    TextDataset,
    TokenizedTextDataset,
    identity_flags,
    identity_groups,
    load_civilcomments,
    load_identity_terms,
    load_text_csv,
)

__all__ = [
    "ADULT_COLUMNS",
    "ADULT_DROPPED",
    "CELEBA_HDF5_KEYS",
    "CELEBA_IMAGE_DIR",
    "CIVILCOMMENTS_IDENTITIES",
    "COMPAS_FEATURES",
    "DATA_DIR_ENV",
    "DIGIT_COLOURS",
    "MISSING_CATEGORY",
    "SPLIT_NAMES",
    "ImageCache",
    "ImageData",
    "ImageDataset",
    "SplitFractions",
    "TabularData",
    "TabularPreprocessor",
    "TabularSplit",
    "TextData",
    "TextDataset",
    "TokenizedTextDataset",
    "available_datasets",
    "default_data_dir",
    "filter_compas",
    "identity_flags",
    "identity_groups",
    "load_adult",
    "load_arrests",
    "load_celeba",
    "load_celeba_hdf5",
    "load_civilcomments",
    "load_coloured_digits",
    "load_compas",
    "load_csv",
    "load_dataset",
    "load_identity_terms",
    "load_image_folder",
    "load_tabular",
    "load_text_csv",
    "read_adult",
    "register_dataset",
]
