"""Every speech-output language: ``bench/expressive.py --all-languages`` prints one row of metrics per target.

Offline there is no translation to render, so each target language's "translation" is espeak-ng reading digits
(``NUMBER_TEXTS``) in that language's voice, neutral (default voice, speed and pitch, no pauses): real speech with the
language's own syllables and intonation, as a statement or, with the source, a question. Sources are English and
Spanish phrases by varied espeak-ng speakers: male, female and child-like pitch (``-p`` 10–99), 120–220 wpm, pauses of
0.3–2 s between phrases, some spoken as questions. Tagalog has no espeak-ng voice and is reported as such.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from engine.audio import SAMPLE_RATE_HZ
from engine.expressivity_metrics import Expressivity, expressivity, speech_rate_correlation
from engine.prosody import ExpressiveStage
from engine.prosody.analysis import PitchProfile, track_f0
from engine.voices import VoiceProfile, nearest_by_pitch

LANGUAGES_TSV = Path(__file__).resolve().parent.parent / "assets" / "languages.tsv"
#: SeamlessM4T code → espeak-ng voice (None: espeak-ng has none).
ESPEAK_VOICES = {
    "arb": "ar", "ben": "bn", "cat": "ca", "ces": "cs", "cmn": "cmn", "cym": "cy", "dan": "da", "deu": "de",
    "eng": "en", "est": "et", "fin": "fi", "fra": "fr-fr", "hin": "hi", "ind": "id", "ita": "it", "jpn": "ja",
    "kor": "ko", "mlt": "mt", "nld": "nl", "pes": "fa", "pol": "pl", "por": "pt", "ron": "ro", "rus": "ru",
    "slk": "sk", "spa": "es", "swe": "sv", "swh": "sw", "tel": "te", "tgl": None, "tha": "th", "tur": "tr",
    "ukr": "uk", "urd": "ur", "uzn": "uz", "vie": "vi",
}  # fmt: skip
NUMBER_TEXTS = ("21, 58, 374, 1996, 42", "7, 315, 86, 2024, 19", "64, 128, 9, 770, 53")
SOURCE_PHRASES = (
    ("eng", "en", ("Welcome to the weekly meeting", "of the translation team")),
    ("eng", "en", ("The first topic", "is the latency", "of the live captions")),
    ("spa", "es", ("Bienvenidos a la reunión", "del equipo de traducción")),
    ("spa", "es", ("El primer tema", "es la latencia", "de los subtítulos")),
)
VARIANTS = ("", "+m3", "+f3", "+f2", "+m7", "+f4")
PITCHES = (10, 30, 50, 70, 85, 99)  # 85–99 with a female variant: child-like
SPEEDS_WPM = (120, 145, 170, 195, 220)
#: The stand-in vocoder voices: (espeak-ng variant, pitch); the first is the default voice.
VOICE_BANK = (("", 50), ("", 20), ("", 80), ("+m3", 60), ("+f4", 40), ("+f2", 50), ("+f2", 80), ("+f2", 99))


def speech_output_languages() -> list[str]:
    with LANGUAGES_TSV.open(encoding="utf-8") as f:
        rows = csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t")
        return [row["code"] for row in rows if row["speech_out"] == "1"]


def voice_profiles(tgt: str, render: Callable[..., np.ndarray], workdir: Path) -> list[VoiceProfile]:
    """Each bank voice of ``tgt`` measured on the first number text (as VoiceMatcher.prepare measures the vocoder)."""
    profiles = []
    for k, (variant, pitch) in enumerate(VOICE_BANK):
        audio = render(NUMBER_TEXTS[0] + ".", workdir / f"{tgt}_v{k}.wav", ESPEAK_VOICES[tgt] + variant, None, pitch)
        profile = PitchProfile.of(track_f0(audio))
        profiles.append(VoiceProfile(k, profile.median_hz, profile.range_st))
    return profiles


def language_items(
    tgt: str, count: int, render: Callable[..., np.ndarray], workdir: Path, seed: int
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``count`` (source language, source, neutral target rendering in the nearest bank voice) triples for ``tgt``."""
    rng = np.random.default_rng(seed)
    profiles = voice_profiles(tgt, render, workdir)
    items = []
    for i in range(count):
        src, voice, phrases = SOURCE_PHRASES[i % len(SOURCE_PHRASES)]
        question = i % 3 == 2
        variant, pitch, speed = rng.choice(VARIANTS), int(rng.choice(PITCHES)), int(rng.choice(SPEEDS_WPM))
        pieces = [np.zeros(int(rng.uniform(0.1, 0.4) * SAMPLE_RATE_HZ), np.float32)]
        for j, phrase in enumerate(phrases):
            if j:
                pieces.append(np.zeros(int(rng.uniform(0.3, 2.0) * SAMPLE_RATE_HZ), np.float32))
            text = phrase + ("?" if question and j == len(phrases) - 1 else "")
            pieces.append(render(text, workdir / f"{tgt}_s{i}_{j}.wav", voice + variant, speed, pitch))
        pieces.append(np.zeros(int(rng.uniform(0.1, 0.4) * SAMPLE_RATE_HZ), np.float32))
        source = np.concatenate(pieces)
        source = source * 10 ** (rng.uniform(-26.0, -3.0) / 20) / max(1e-6, float(np.abs(source).max()))
        text = NUMBER_TEXTS[i % len(NUMBER_TEXTS)] + ("?" if question else ".")
        variant, pitch = VOICE_BANK[nearest_by_pitch(profiles, PitchProfile.of(track_f0(source))) or 0]
        output = render(text, workdir / f"{tgt}_o{i}.wav", ESPEAK_VOICES[tgt] + variant, None, pitch)
        items.append((src, source.astype(np.float32), output / max(1e-6, float(np.abs(output).max())) * 0.9))
    return items


#: Rate rho per direction needs this many items of that direction: Spearman's rho over 4 items moves in steps of 0.2
#: (one swapped pair of nearly equal rates costs 0.2), over 8 in steps of about 0.02.
MIN_DIRECTION_ITEMS = 8


@dataclass(frozen=True)
class LanguageRow:
    """One target language's figures; ``metrics`` is None when espeak-ng has no voice for it."""

    tgt: str
    metrics: Expressivity | None
    #: source language → rate rho over that direction's items (the row's rate is their mean).
    rate_by_source: dict[str, float]


def language_rows(
    stage: ExpressiveStage, count: int, render: Callable[..., np.ndarray], workdir: Path
) -> list[LanguageRow]:
    """One row per speech-output language, ``count`` items each (split evenly over the source languages)."""
    rows = []
    for k, tgt in enumerate(speech_output_languages()):
        if ESPEAK_VOICES.get(tgt) is None:
            rows.append(LanguageRow(tgt, None, {}))
            continue
        items = language_items(tgt, count, render, workdir, seed=k)
        outputs = [stage.apply(source, output, tgt, src) for src, source, output in items]
        metrics = expressivity([source for _, source, _ in items], outputs)
        by_source = rate_per_direction(items, outputs)
        mean = float(np.mean(list(by_source.values()))) if by_source else float("nan")
        rows.append(LanguageRow(tgt, replace(metrics, rate_correlation=mean), by_source))
    return rows


def rate_per_direction(items: list[tuple[str, np.ndarray, np.ndarray]], outputs: list[np.ndarray]) -> dict[str, float]:
    """Source language → rate correlation of that direction's items, for the directions with at least
    ``MIN_DIRECTION_ITEMS`` items (SeamlessExpressive reports rate rho per translation direction)."""
    figures = {}
    for src in sorted({src for src, _, _ in items}):
        pairs = [(source, out) for (lang, source, _), out in zip(items, outputs, strict=True) if lang == src]
        if len(pairs) >= MIN_DIRECTION_ITEMS:
            figures[src] = speech_rate_correlation([s for s, _ in pairs], [o for _, o in pairs])
    return figures


TARGETS = (("rate_correlation", 0.9, True), ("pause_alignment", 0.95, True), ("f0_error_st", 1.0, False),
           ("contour_correlation", 0.7, True), ("loudness_error_lu", 1.0, False))  # fmt: skip


def print_language_table(rows: list[LanguageRow]) -> None:
    sources = sorted({src for row in rows for src in row.rate_by_source})
    heads = "".join(f" Rate rho {src}→ |" for src in sources)
    print(f"\n| target |{heads} Rate rho | Pause | F0 err st | Contour r | Loudness err LU |")
    print("|---|" + "---|" * (len(sources) + 5))
    measured = [row.metrics for row in rows if row.metrics is not None]
    for row in rows:
        if row.metrics is None:
            print(f"| {row.tgt} | " + " | ".join(["no espeak-ng voice"] * (len(sources) + 5)) + " |")
            continue
        directions = [f"{row.rate_by_source.get(src, float('nan')):.3f}" for src in sources]
        cells = directions + [f"{getattr(row.metrics, f):.3f}" for f, _, _ in TARGETS]
        print(f"| {row.tgt} | " + " | ".join(cells) + " |")
    means = {f: float(np.nanmean([getattr(m, f) for m in measured])) for f, _, _ in TARGETS}
    direction_means = [
        f"{np.mean([r.rate_by_source[src] for r in rows if src in r.rate_by_source]):.3f}" for src in sources
    ]
    cells = direction_means + [f"{means[f]:.3f}" for f, _, _ in TARGETS]
    print(f"| mean of {len(measured)} | " + " | ".join(cells) + " |")
    for f, bar, higher in TARGETS:
        met = means[f] >= bar if higher else means[f] <= bar
        print(f"target {f} {'>=' if higher else '<='} {bar}: {'met' if met else 'NOT met'} ({means[f]:.3f})")
