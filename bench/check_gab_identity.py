"""Check the identity flags against the Gab release: ``identity_flags`` vs its ``id_any_k25`` column.

``gab/gab_with_identity.csv`` flags each post that mentions any of the 25 terms of
``gab/identity_terms.txt`` (``id_any_k25``). This recomputes the flags with
:func:`fairreprogram.data.identity_flags` (whole words, case-insensitive) and
counts the rows where the two agree. Writes ``identity.json`` into ``--out``.

    python bench/check_gab_identity.py [--data-dir ../shared/data] [--out bench/results/gab-identity]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from fairreprogram.data import default_data_dir, identity_flags, load_identity_terms
from fairreprogram.utils import atomic_write_json

COLUMN = "id_any_k25"
SHOWN = 10


def check(data_dir: Path) -> dict[str, object]:
    """Compare the recomputed flags with the released column."""
    folder = data_dir / "gab"
    terms = load_identity_terms(folder / "identity_terms.txt")
    # Only empty fields are missing, as in load_text_csv: a post reading "NA" is a post.
    frame = pd.read_csv(folder / "gab_with_identity.csv", keep_default_na=False, na_values=[""])
    texts = frame["text"].fillna("").astype(str).tolist()
    ours = identity_flags(texts, terms)
    reference = frame[COLUMN].to_numpy(dtype="int64")
    wrong = ours != reference
    by_split = {
        str(name): float((~wrong[(frame["split"] == name).to_numpy()]).mean())
        for name in sorted(frame["split"].unique())
    }
    return {
        "data": str(folder / "gab_with_identity.csv"),
        "column": COLUMN,
        "terms": len(terms),
        "rows": len(frame),
        "matches": int((~wrong).sum()),
        "mismatches": int(wrong.sum()),
        "agreement": float((~wrong).mean()),
        "agreement_by_split": by_split,
        "flagged_ours": int(ours.sum()),
        "flagged_reference": int(reference.sum()),
        "first_mismatches": frame.loc[wrong, "doc_id"].head(SHOWN).tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="folder holding gab/")
    parser.add_argument("--out", type=Path, default=Path("bench/results/gab-identity"), help="output folder")
    args = parser.parse_args()
    result = check(args.data_dir)
    atomic_write_json(args.out / "identity.json", result)
    print(
        f"{result['rows']} rows, {result['matches']} match, {result['mismatches']} differ: "
        f"agreement {result['agreement']:.4%} -> {args.out / 'identity.json'}"
    )


if __name__ == "__main__":
    main()
