"""Per-language pace tables: duration factors and typical syllable rates (assets/expressive/duration_factors.tsv)."""

from __future__ import annotations

import csv
from pathlib import Path


def _read_language_column(path: Path, column: str) -> dict[str, float]:
    """code → value of ``column`` from the TSV (``#`` lines are comments; an empty cell means no value)."""
    with path.open(encoding="utf-8") as f:
        rows = csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t")
        values = {row["code"]: float(row[column]) for row in rows if (row.get(column) or "").strip()}
    if any(not 0.5 <= v <= 2.0 for v in values.values()):
        raise ValueError(f"{path}: every {column} must be between 0.5 and 2")
    return values


def read_duration_factors(path: Path) -> dict[str, float]:
    """code → duration factor (speech duration for the same content, English = 1)."""
    return _read_language_column(path, "factor")


def read_syllable_rates(path: Path) -> dict[str, float]:
    """code → typical syllable rate (syllables per second, English = 1), for the languages where it was measured."""
    return _read_language_column(path, "syllable_rate")
