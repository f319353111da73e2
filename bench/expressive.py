"""Expressive-stage benchmark: does the translated speech keep the speaker's pauses, pace, pitch and loudness?

The test set is generated with espeak-ng, so it needs no download. Each item is an English sentence spoken as the
"source" by one of several voices (``-v``), at one of several speeds (``-s``) and pitches (``-p``), at a random
level, cut into phrases with inserted pauses; its "output" is a Spanish translation of the sentence rendered neutrally
(Spanish voice, default speed and pitch, full scale, no pauses), as a stock TTS voice would say it. The metrics of
:mod:`engine.metrics` are computed with the stage off (the neutral rendering as it is) and on, side by side, with
the stage's real-time factor and the delay it adds to each streamed speech chunk.

    nice -n 10 .venv/bin/python bench/expressive.py             # 30 items, about half a minute on 2 cores
    flock /tmp/parley-cpu.lock taskset -c 0 .venv/bin/python bench/expressive.py  # the live delay on one core
    nice -n 10 .venv/bin/python bench/expressive.py --items 12  # quicker
    nice -n 10 .venv/bin/python bench/expressive.py --libraries 6  # and the library comparison (needs
                                                                   # requirements-bench.txt)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from bench.expressive_languages import MIN_DIRECTION_ITEMS
from engine.audio import SAMPLE_RATE_HZ, load_audio
from engine.expressivity_metrics import Expressivity, expressivity
from engine.prosody import ExpressiveOptions, ExpressiveStage
from engine.prosody.analysis import PitchProfile, track_f0

TGT, SRC = "spa", "eng"
VOICES = ("en", "en-us", "en+f3", "en+m3", "en+f2", "en-gb-x-rp")
SPEEDS_WPM = (115, 140, 170, 200, 235)
PITCHES = (15, 35, 50, 70, 90)
#: (English phrases, split where a pause may be inserted; Spanish translation of the whole sentence)
SENTENCES = (
    (
        ("Welcome to the weekly meeting", "of the translation team"),
        "Bienvenidos a la reunión semanal del equipo de traducción",
    ),
    (("Today we will talk", "about the new streaming engine"), "Hoy hablaremos del nuevo motor de transmisión"),
    (
        ("The first topic", "is the latency", "of the live captions"),
        "El primer tema es la latencia de los subtítulos en directo",
    ),
    (
        ("Our users want to hear the translation", "while they speak"),
        "Nuestros usuarios quieren oír la traducción mientras hablan",
    ),
    (
        ("The second topic", "is the quality of the synthetic voice"),
        "El segundo tema es la calidad de la voz sintética",
    ),
    (
        ("We measured every stage", "on a small computer", "without a graphics card"),
        "Medimos cada etapa en un ordenador pequeño sin tarjeta gráfica",
    ),
    (("The results are written", "in the closing note"), "Los resultados están escritos en la nota final"),
    (
        ("Please read them", "before the next meeting on Thursday"),
        "Por favor, léanlos antes de la próxima reunión del jueves",
    ),
    (
        ("Thank you all for listening", "and see you next week"),
        "Gracias a todos por escuchar y hasta la semana que viene",
    ),
    (
        ("I think", "that we should try again", "tomorrow morning"),
        "Creo que deberíamos intentarlo de nuevo mañana por la mañana",
    ),
)
#: Streaming: the translated speech of a segment arrives in chunks of about this length (one per commit).
STREAM_CHUNK_S = 1.0
#: The live path's bound on the stage's added delay per chunk, 95th percentile, one CPU core (issue #20).
LIVE_DELAY_P95_MS = 40.0


@dataclass(frozen=True)
class Item:
    source: np.ndarray
    output: np.ndarray


def espeak(text: str, path: Path, voice: str, speed_wpm: int | None = None, pitch: int | None = None) -> np.ndarray:
    args = ["espeak-ng", "-v", voice, "-w", str(path)]
    if speed_wpm is not None:
        args += ["-s", str(speed_wpm)]
    if pitch is not None:
        args += ["-p", str(pitch)]
    subprocess.run([*args, text], check=True, capture_output=True)
    return load_audio(path)


def make_items(count: int, workdir: Path, seed: int = 6) -> list[Item]:
    """``count`` source/output pairs; every setting is drawn from a seeded generator, so runs are comparable."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(count):
        phrases, translation = SENTENCES[i % len(SENTENCES)]
        voice, speed, pitch = rng.choice(VOICES), int(rng.choice(SPEEDS_WPM)), int(rng.choice(PITCHES))
        pieces = [np.zeros(int(rng.uniform(0.1, 0.4) * SAMPLE_RATE_HZ), np.float32)]
        for j, phrase in enumerate(phrases):
            if j and rng.random() < 0.75:  # most phrase boundaries get a pause, some are spoken through
                pieces.append(np.zeros(int(rng.uniform(0.25, 0.9) * SAMPLE_RATE_HZ), np.float32))
            pieces.append(espeak(phrase, workdir / f"s{i}_{j}.wav", str(voice), speed, pitch))
        pieces.append(np.zeros(int(rng.uniform(0.1, 0.4) * SAMPLE_RATE_HZ), np.float32))
        level = 10 ** (rng.uniform(-26.0, -3.0) / 20)
        source = np.concatenate(pieces) * level / max(1e-6, float(np.abs(np.concatenate(pieces)).max()))
        output = espeak(translation, workdir / f"o{i}.wav", "es")
        items.append(Item(source.astype(np.float32), output / max(1e-6, float(np.abs(output).max())) * 0.9))
    return items


def streaming_delays_s(stage: ExpressiveStage, item: Item, live: bool = True) -> list[float]:
    """Compute time the stage adds to each streamed chunk: the segment's translated speech in ``STREAM_CHUNK_S``
    chunks, each with the source audio heard since the previous chunk (as the streaming session passes it). The
    first chunk of a segment also pays for the voice choice (the speaker's F0 profile, which is what
    :meth:`VoiceMatcher.nearest` computes besides a lookup in the cached voice profiles)."""
    chunk = int(STREAM_CHUNK_S * SAMPLE_RATE_HZ)
    pieces = max(1, round(item.output.shape[0] / chunk))
    source_step = item.source.shape[0] // pieces
    delays = []
    for k in range(pieces):
        started = time.perf_counter()
        if k == 0:
            PitchProfile.of(track_f0(item.source[:source_step]))
        heard, speech = item.source[k * source_step : (k + 1) * source_step], item.output[k * chunk : (k + 1) * chunk]
        stage.apply(heard, speech, TGT, SRC, live=live)
        delays.append(time.perf_counter() - started)
    return delays


def one_core_delays_ms(stage: ExpressiveStage, items: list[Item]) -> tuple[np.ndarray, np.ndarray]:
    """Streaming delays (ms) with the live and with the offline Rubber Band setting, interleaved item by item so
    that both see the same machine load, the process pinned to one CPU core meanwhile."""
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})
    try:
        pairs = [(streaming_delays_s(stage, item, True), streaming_delays_s(stage, item, False)) for item in items]
    finally:
        os.sched_setaffinity(0, cores)
    live_ms = np.array([d for live, _ in pairs for d in live]) * 1000
    return live_ms, np.array([d for _, offline in pairs for d in offline]) * 1000


def row(name: str, off: float, on: float, better: str) -> str:
    wins = on > off if better == "higher" else on < off
    return f"| {name:<28} | {off:>7.3f} | {on:>7.3f} | {better:<6} | {'yes' if wins else 'NO':<4} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=30, help="test items (at least 3)")
    parser.add_argument(
        "--all-languages",
        type=int,
        metavar="ITEMS",
        default=0,
        help="also one row per speech-output language, ITEMS items each (at least 16: 8 per source language)",
    )
    parser.add_argument("--noise", action="store_true", help="also run the metrics with noisy sources")
    parser.add_argument("--voices", action="store_true", help="also measure voice similarity (VSim) per voice choice")
    parser.add_argument(
        "--libraries",
        type=int,
        metavar="CLIPS",
        default=0,
        help="also compare the hand-written signal processing with the libraries on CLIPS clips (6: ~10 min)",
    )
    args = parser.parse_args()
    if args.all_languages and args.all_languages < 2 * MIN_DIRECTION_ITEMS:
        parser.error(f"--all-languages needs at least {2 * MIN_DIRECTION_ITEMS} items: rate rho is per direction")
    if shutil.which("espeak-ng") is None:
        print("espeak-ng is missing: run scripts/setup.sh", file=sys.stderr)
        return 1
    stage = ExpressiveStage(ExpressiveOptions())
    with tempfile.TemporaryDirectory() as tmp:
        items = make_items(max(3, args.items), Path(tmp))
    source_s = sum(item.source.shape[0] for item in items) / SAMPLE_RATE_HZ

    started = time.perf_counter()
    on = [stage.apply(item.source, item.output, TGT, SRC) for item in items]
    stage_s = time.perf_counter() - started
    delays_ms, offline_ms = one_core_delays_ms(stage, items)

    sources = [item.source for item in items]
    off_metrics: Expressivity = expressivity(sources, [item.output for item in items])
    on_metrics: Expressivity = expressivity(sources, on)
    print(f"{len(items)} items, {source_s:.1f} s of source speech, target {TGT}\n")
    print("| metric                       |     off |      on | better | wins |")
    print("|------------------------------|---------|---------|--------|------|")
    print(row("Rate (Spearman rho)", off_metrics.rate_correlation, on_metrics.rate_correlation, "higher"))
    print(row("Pause alignment (0-1)", off_metrics.pause_alignment, on_metrics.pause_alignment, "higher"))
    print(row("F0 median error (semitones)", off_metrics.f0_error_st, on_metrics.f0_error_st, "lower"))
    print(row("F0 contour correlation", off_metrics.contour_correlation, on_metrics.contour_correlation, "higher"))
    print(row("Loudness error (LU)", off_metrics.loudness_error_lu, on_metrics.loudness_error_lu, "lower"))
    out_s = sum(x.shape[0] for x in on) / SAMPLE_RATE_HZ
    neutral_s = sum(item.output.shape[0] for item in items) / SAMPLE_RATE_HZ
    print(f"\nduration, output / source: off {neutral_s / source_s:.2f}, on {out_s / source_s:.2f}")
    print(f"stage real-time factor: {stage_s / source_s:.4f} ({stage_s * 1000 / len(items):.0f} ms per segment)")
    for name, ms in (("live setting", delays_ms), ("offline setting", offline_ms)):
        print(
            f"streaming, one core, {name}: added delay per {STREAM_CHUNK_S:.0f} s speech chunk: mean {ms.mean():.0f} "
            f"ms, p95 {np.percentile(ms, 95):.0f} ms, max {ms.max():.0f} ms"
        )
    print(f"live / offline p95 (same run): {np.percentile(delays_ms, 95) / np.percentile(offline_ms, 95):.2f}")
    live_p95 = float(np.percentile(delays_ms, 95))
    met = "met" if live_p95 <= LIVE_DELAY_P95_MS else "NOT met"
    print(f"target live delay p95 <= {LIVE_DELAY_P95_MS:.0f} ms on one core: {met} ({live_p95:.0f} ms)")
    if args.all_languages:
        from bench.expressive_languages import language_rows, print_language_table

        with tempfile.TemporaryDirectory() as tmp:
            print_language_table(language_rows(stage, args.all_languages, espeak, Path(tmp)))
    if args.noise:
        from bench.expressive_noise import noise_table, print_noise_table

        talkers = [item.output for item in items[: len(SENTENCES)]]  # the other sentences, Spanish voice
        print_noise_table(noise_table(sources, [item.output for item in items], stage, talkers))
    if args.voices:
        from bench.expressive_voices import print_voice_table

        translations = [SENTENCES[i % len(SENTENCES)][1] for i in range(len(items))]
        with tempfile.TemporaryDirectory() as tmp:
            print_voice_table(
                sources, translations, stage, lambda text, path, voice: espeak(text, path, voice), Path(tmp)
            )
    if args.libraries:
        from bench.expressive_libraries import library_comparison, print_table

        clips = [x for item in items for x in (item.output, item.source / np.abs(item.source).max() * 0.9)]
        print_table(library_comparison(clips[: args.libraries]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
