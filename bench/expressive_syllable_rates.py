"""Typical syllable rates for the languages without a published figure, estimated with espeak-ng.

Each language's espeak-ng voice reads the same texts (``TEXTS``: numbers, which every voice can say) at one fixed
speed (``SPEED_WPM``); the stage's own syllable detector counts syllables per second of speech, and the ratio to
English's is the estimate. espeak-ng times its speech per language (its voices carry per-language timing rules), so
the ratio carries how fast each language's syllables go when the same content is said at the same pace. Checked
against the published figures where they exist (the script prints both); the estimate fills only the empty cells.

    .venv/bin/python bench/expressive_syllable_rates.py           # print the estimates and the check
    .venv/bin/python bench/expressive_syllable_rates.py --write   # also fill the empty cells of the TSV
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from bench.expressive import espeak
from bench.expressive_languages import ESPEAK_VOICES, speech_output_languages
from engine.prosody.analysis import count_syllables, pause_layout
from engine.prosody.analysis.frames import HOP_S
from engine.prosody.languages import read_syllable_rates
from engine.prosody.options import DURATION_FACTORS_TSV

TEXTS = ("21, 58, 374, 1996, 42.", "7, 315, 86, 2024, 19.", "64, 128, 9, 770, 53.", "3, 1000, 45, 612, 88.")
SPEED_WPM = 175


def measured_rate(voice: str, workdir: Path) -> float:
    """Syllables per second of speech (pauses of 0.2 s or more left out) over all of ``TEXTS``."""
    syllables, seconds = 0, 0.0
    for k, text in enumerate(TEXTS):
        audio = espeak(text, workdir / f"{voice}_{k}.wav", voice, SPEED_WPM)
        syllables += count_syllables(audio)
        seconds += pause_layout(audio, 0.2).speech_hops * HOP_S
    return syllables / seconds


def estimates(workdir: Path) -> dict[str, float]:
    """code → estimated syllable rate relative to English, for every language with an espeak-ng voice."""
    rates = {
        code: measured_rate(ESPEAK_VOICES[code], workdir)
        for code in speech_output_languages()
        if ESPEAK_VOICES.get(code)
    }
    return {code: rate / rates["eng"] for code, rate in rates.items()}


def fill_tsv(path: Path, estimated: dict[str, float]) -> None:
    """Write each estimate (rounded to 0.01) into the empty syllable_rate cells of ``path``; other lines unchanged."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    columns = lines[header].split("\t")
    rate = columns.index("syllable_rate")
    for i in range(header + 1, len(lines)):
        cells = lines[i].split("\t") + [""] * (len(columns) - len(lines[i].split("\t")))
        if not cells[rate].strip() and cells[0] in estimated:
            cells[rate] = f"{estimated[cells[0]]:.2f}"
        lines[i] = "\t".join(cells)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="fill the TSV's empty syllable_rate cells")
    args = parser.parse_args()
    published = read_syllable_rates(DURATION_FACTORS_TSV)
    with tempfile.TemporaryDirectory() as tmp:
        estimated = estimates(Path(tmp))
    print("| code | espeak-ng estimate | published |\n|---|---|---|")
    for code, value in estimated.items():
        print(
            f"| {code} | {value:.2f} | {published[code]:.2f} |" if code in published else f"| {code} | {value:.2f} | |"
        )
    checked = [(estimated[c], published[c]) for c in published if c in estimated and c != "eng"]
    errors = np.abs([e / p - 1 for e, p in checked])
    default = np.abs([1 / p - 1 for _, p in checked])  # what counting every language as English's rate gives
    print(
        f"\nagainst the {len(checked)} published figures: mean error {errors.mean():.0%} (max {errors.max():.0%}); "
        f"English's rate for all: {default.mean():.0%} (max {default.max():.0%})"
    )
    if args.write:
        fill_tsv(DURATION_FACTORS_TSV, {c: v for c, v in estimated.items() if c not in published})
    return 0


if __name__ == "__main__":
    sys.exit(main())
