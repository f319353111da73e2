"""Watermark benchmark: robustness table (BER, TPR at FPR <= 1e-3 per attack), quality (SNR, wideband PESQ), speed.

Speech comes from espeak-ng (voices, languages, speeds and pitches varied), 16 kHz mono. The detection threshold is
the highest score over the clean (never marked) clips, so the empirical false-positive rate on them is 0; with at
least 1000 clean clips that bounds it at <= 1e-3. Attacks (bench/watermark_attacks.py) use numpy/scipy and ffmpeg
(MP3, Opus, pitch shift, atempo). Speed is measured with the process pinned to one CPU core (restored afterwards),
counting the CPU time of child processes too (audiowmark runs as one).

    python -m bench.watermark                      # the full run: 50 marked clips, 1000 clean clips
    python -m bench.watermark --clips 8 --clean 100  # a quick look
    python -m bench.watermark --seeds 1 2 3         # several clip sets

When ``audiowmark`` is on PATH, a side-by-side table follows (both backends, the same clips and attacks, on 5 s
and on 25 s clips: audiowmark needs about 10 s for one payload).

BER counts a payload the decoder could not read (CRC failed) as 16 wrong bits of 32, a guess; "payload" is the
fraction of clips whose whole payload was read.

Bars (issues 4 and 21): BER <= 1 % and TPR >= 0.95 for every required attack (for the splice, also the marked
range found within ±0.5 s at both ends on >= 95 % of clips), SNR >= 25 dB, PESQ >= 4.0, embed + detect RTF <= 0.01
(the resynchronising search included: the bench also times detection where the search runs).
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere (bench/safety.py
# would otherwise stand in for the safety package)

from bench.watermark_attacks import ATTACKS, CLIP_S, clip_of, resample
from safety.watermark import SAMPLE_RATE_HZ, WatermarkConfig, Watermarker, create_watermarker

#: Long clips for the side-by-side table (audiowmark needs about 10 s per payload).
LONG_CLIP_S = 25.0
SPLICE_PAD_S = 3.0
#: Localisation error allowed for the splice attack, seconds.
SPLICE_TOLERANCE_S = 0.5
BER_BAR = 0.01
TPR_BAR = 0.95
SNR_BAR_DB = 25.0
PESQ_BAR = 4.0
RTF_BAR = 0.01

_SENTENCES = {
    "en": "The committee will meet again next Thursday to discuss the budget, the new schedule and the results "
    "of the survey that was sent to every member of the staff last month.",
    "de": "Der Zug nach Berlin fährt heute wegen Bauarbeiten eine halbe Stunde später ab, bitte achten Sie auf die "
    "Durchsagen am Bahnsteig und in der Halle.",
    "fr": "Nous avons visité le musée pendant toute la matinée, puis nous avons déjeuné dans un petit restaurant "
    "près de la rivière avec nos amis.",
    "es": "El mercado abre temprano todos los sábados y la gente llega desde los pueblos cercanos para comprar "
    "frutas, verduras y pan recién hecho.",
    "it": "La biblioteca resterà chiusa per tutta la settimana prossima a causa dei lavori di restauro del tetto "
    "e delle finestre del primo piano.",
    "pt": "Os alunos apresentaram os seus projetos ao professor no fim do semestre e todos ficaram muito "
    "satisfeitos com os resultados obtidos.",
    "nl": "Het weer wordt morgen wisselvallig met af en toe een bui, maar in de middag breekt de zon op veel "
    "plaatsen door en wordt het warmer.",
    "sv": "Vi åkte ut till skärgården i helgen och badade, fiskade och grillade på kvällen medan solen sakta gick "
    "ner bakom öarna.",
}
_VARIANTS = ("", "+m3", "+f2", "+f4", "+m7", "+klatt")


@dataclass(frozen=True)
class Voice:
    language: str
    variant: str
    words_per_minute: int
    pitch: int

    def synthesise(self) -> np.ndarray:
        """16 kHz mono float32 speech for this voice's sentence."""
        return espeak(self.language + self.variant, _SENTENCES[self.language], self.words_per_minute, self.pitch)


def espeak(voice: str, text: str, words_per_minute: int = 160, pitch: int = 50) -> np.ndarray:
    """Synthesise ``text`` with espeak-ng and return 16 kHz mono float32 samples."""
    cmd = ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-p", str(pitch), "--stdout", text]
    proc = subprocess.run(cmd, capture_output=True, check=True)
    samples, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    return resample(samples, rate, SAMPLE_RATE_HZ)


def voices(count: int, seed: int) -> list[Voice]:
    rng = np.random.default_rng(seed)
    languages = sorted(_SENTENCES)
    return [
        Voice(
            language=languages[i % len(languages)],
            variant=_VARIANTS[int(rng.integers(len(_VARIANTS)))],
            words_per_minute=int(rng.integers(130, 200)),
            pitch=int(rng.integers(25, 80)),
        )
        for i in range(count)
    ]


@dataclass(frozen=True)
class Row:
    attack: str
    required: bool
    ber: float
    tpr: float
    #: Fraction of clips whose whole payload was recovered (CRC valid and equal).
    decoded: float
    note: str = ""
    #: Splice only: fraction of clips whose marked range was found within ±SPLICE_TOLERANCE_S at both ends.
    located: float = 1.0

    def passes(self) -> bool:
        return self.ber <= BER_BAR and self.tpr >= TPR_BAR and self.located >= TPR_BAR


def bit_errors(decoded: int | None, payload: int) -> int:
    """Wrong payload bits; an undecodable payload counts as a guess (16 of 32 wrong)."""
    return 16 if decoded is None else bin(decoded ^ payload).count("1")


def evaluate(
    backend: Watermarker, marked: list[np.ndarray], payloads: list[int], threshold: float,
    pool: list[np.ndarray], seed: int,
) -> list[Row]:  # fmt: skip
    rows = []
    for spec in ATTACKS:
        rng = np.random.default_rng(seed)
        errors, hits, exact = 0, 0, 0
        for audio, payload in zip(marked, payloads, strict=True):
            result = backend.detect(spec.apply(audio, rng), SAMPLE_RATE_HZ)
            errors += bit_errors(result.payload, payload)
            hits += result.score > threshold
            exact += result.payload == payload
        count = len(marked)
        rows.append(Row(spec.name, spec.required, errors / (32 * count), hits / count, exact / count))
    rows.append(splice_row(backend, marked, payloads, threshold, pool, seed))
    return rows


def splice_row(
    backend: Watermarker, marked: list[np.ndarray], payloads: list[int], threshold: float,
    pool: list[np.ndarray], seed: int,
) -> Row:  # fmt: skip
    """Marked clip between two stretches of unmarked speech; localisation must be within ±0.5 s at both ends."""
    rng = np.random.default_rng(seed)
    errors, hits, exact, located, worst = 0, 0, 0, 0, 0.0
    for index, (audio, payload) in enumerate(zip(marked, payloads, strict=True)):
        before = clip_of(pool[index % len(pool)], rng, SPLICE_PAD_S)
        after = clip_of(pool[(index + 1) % len(pool)], rng, SPLICE_PAD_S)
        result = backend.detect(np.concatenate([before, audio, after]), SAMPLE_RATE_HZ)
        errors += bit_errors(result.payload, payload)
        hits += result.score > threshold
        exact += result.payload == payload
        ranges = result.marked_s
        if ranges:
            error = max(abs(ranges[0][0] - SPLICE_PAD_S), abs(ranges[-1][1] - SPLICE_PAD_S - audio.size / 16000))
            worst = max(worst, error)
            located += error <= SPLICE_TOLERANCE_S
    count = len(marked)
    note = f"located {located}/{count}, worst error {worst:.2f} s"
    return Row(
        "splice (localise ±0.5 s)", True, errors / (32 * count), hits / count, exact / count, note, located / count
    )


def snr_db(reference: np.ndarray, marked: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / max(np.sum((marked - reference) ** 2), 1e-20)))


def pesq_wb(reference: np.ndarray, marked: np.ndarray) -> float | None:
    try:
        from pesq import pesq
    except ImportError:
        return None
    return float(pesq(SAMPLE_RATE_HZ, reference, marked, "wb"))


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (external tools such as audiowmark)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def real_time_factors(
    backend: Watermarker, clips: list[np.ndarray], payloads: list[int], attacked: list[np.ndarray]
) -> tuple[float, float, float]:
    """(embed + detect, detect of clean clips, detect of attacked clips) CPU seconds per second of audio, pinned to
    one core (the affinity is restored afterwards), after one untimed warm-up call. Clean and attacked clips are
    where the resynchronising search runs."""
    pinned = hasattr(os, "sched_setaffinity")
    before = os.sched_getaffinity(0) if pinned else set()
    if pinned:
        os.sched_setaffinity(0, {min(before)})
    try:
        backend.detect(backend.embed(clips[0], SAMPLE_RATE_HZ, payloads[0]), SAMPLE_RATE_HZ)  # warm FFT plans
        start = cpu_seconds()
        for audio, payload in zip(clips, payloads, strict=True):
            backend.detect(backend.embed(audio, SAMPLE_RATE_HZ, payload), SAMPLE_RATE_HZ)
        both = cpu_seconds() - start
        times = []
        for audios in (clips, attacked):
            start = cpu_seconds()
            for audio in audios:
                backend.detect(audio, SAMPLE_RATE_HZ)
            times.append((cpu_seconds() - start) / (sum(a.size for a in audios) / SAMPLE_RATE_HZ))
    finally:
        if pinned:
            os.sched_setaffinity(0, before)
    return both / (sum(c.size for c in clips) / SAMPLE_RATE_HZ), times[0], times[1]


def long_clip(pool: list[np.ndarray], rng: np.random.Generator, length_s: float = LONG_CLIP_S) -> np.ndarray:
    """Speech of several voices joined (with 0.3 s pauses) until ``length_s``, as a long recording."""
    parts, total = [], 0
    while total < length_s * SAMPLE_RATE_HZ:
        speech = pool[int(rng.integers(len(pool)))]
        parts += [speech, np.zeros(int(0.3 * SAMPLE_RATE_HZ), np.float32)]
        total += speech.size + int(0.3 * SAMPLE_RATE_HZ)
    return np.concatenate(parts)[: int(length_s * SAMPLE_RATE_HZ)].astype(np.float32)


def report(name: str, backend: Watermarker, clips: list[np.ndarray], clean: list[np.ndarray], pool, seed: int):
    """Print one backend's robustness table, quality and speed on ``clips``; return its rows."""
    rng = np.random.default_rng(seed)
    payloads = [int(p) for p in rng.integers(0, 2**32, size=len(clips))]
    marked = [backend.embed(c, SAMPLE_RATE_HZ, p) for c, p in zip(clips, payloads, strict=True)]
    clean_results = [backend.detect(c, SAMPLE_RATE_HZ) for c in clean]
    threshold = max(result.score for result in clean_results)
    rows = evaluate(backend, marked, payloads, threshold, pool, seed)
    print(f"== {name}: threshold {threshold:.2f} (max of {len(clean)} clean scores; FPR <= {1 / len(clean):.0e})")
    false_alarms = sum(result.detected for result in clean_results)
    false_payloads = sum(result.payload is not None for result in clean_results)
    print(f"clean clips detected by the backend's own rule: {false_alarms}, with a payload read: {false_payloads}")
    print(f"{'attack':26s} {'BER':>7s} {'TPR':>5s} {'payload':>7s}  bar")
    for row in rows:
        verdict = ("ok" if row.passes() else "FAIL") if row.required else "report"
        print(f"{row.attack:26s} {row.ber:7.4f} {row.tpr:5.2f} {row.decoded:7.2f}  {verdict} {row.note}")
    snrs = [snr_db(c, m) for c, m in zip(clips, marked, strict=True)]
    scores = [pesq_wb(c, m) for c, m in zip(clips, marked, strict=True)]
    print(f"SNR dB: mean {np.mean(snrs):.1f}, min {np.min(snrs):.1f} (bar >= {SNR_BAR_DB})")
    if scores[0] is None:
        print("PESQ: not measured (pip install pesq)")
    else:
        print(f"PESQ wb: mean {np.mean(scores):.2f}, min {np.min(scores):.2f} (bar >= {PESQ_BAR})")
    timed = min(10, len(clips))
    attacked = [resample(m, 10, 11) for m in marked[:timed]]  # speed 1.1x: the search runs
    both, clean_rtf, attacked_rtf = real_time_factors(backend, clips[:timed], payloads[:timed], attacked)
    print(f"real-time factor, one core, child processes included: embed + detect {both:.4f} (bar <= {RTF_BAR}); "
          f"detect with the search running: clean {clean_rtf:.4f}, speed 1.1x {attacked_rtf:.4f}\n")  # fmt: skip
    return rows


def side_by_side(backends: dict[str, Watermarker], pool: list[np.ndarray], clips: int, clean: int, seed: int) -> None:
    """Payloads read (and TPR) per attack for every backend on the same 5 s and 25 s clips."""
    rng = np.random.default_rng(seed + 7)
    sets = {"5 s": [clip_of(pool[i % len(pool)], rng) for i in range(clips)]}
    sets["25 s"] = [long_clip(pool, rng) for _ in range(clips)]
    clean_sets = {"5 s": [clip_of(p, rng) for p in pool[:clean]], "25 s": [long_clip(pool, rng) for _ in range(clean)]}
    table: dict[tuple[str, str], dict[str, Row]] = {}
    for length, audios in sets.items():
        for name, backend in backends.items():
            rows = report(f"{name}, {length} clips", backend, audios, clean_sets[length], pool, seed)
            table[(name, length)] = {row.attack: row for row in rows}
    columns = list(table)
    print("== side by side: payload read / TPR at the clean-clip threshold")
    print(f"{'attack':26s} " + " ".join(f"{f'{n} {length}':>22s}" for n, length in columns))
    for attack in table[columns[0]]:
        cells = (table[c][attack] for c in columns)
        print(f"{attack:26s} " + " ".join(f"{f'{r.decoded:.2f} / {r.tpr:.2f}':>22s}" for r in cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=50, help="marked clips per attack (bar: >= 50)")
    parser.add_argument("--clean", type=int, default=1000, help="clean clips for the threshold (bar: >= 1000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1], help="clip sets (issue 21: at least three)")
    parser.add_argument("--side-clips", type=int, default=16, help="clips per backend and length, side by side")
    parser.add_argument("--side-clean", type=int, default=48, help="clean clips per length, side by side")
    parser.add_argument("--side-by-side", action="store_true", help="print it even without audiowmark")
    args = parser.parse_args(argv)
    backends: dict[str, Watermarker] = {"built-in": create_watermarker(WatermarkConfig(key_secret="bench-key"))}
    if shutil.which("audiowmark"):
        backends["audiowmark"] = create_watermarker(WatermarkConfig(backend="audiowmark", audiowmark_detect_speed=True))
    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        clips = [clip_of(v.synthesise(), rng) for v in voices(args.clips, seed)]
        pool = [v.synthesise() for v in voices(max(48, args.clean // 20), seed + 1)]
        clean = [clip_of(pool[i % len(pool)] * rng.uniform(0.3, 1.0), rng) for i in range(args.clean)]
        print(f"seed {seed}: {len(clips)} marked clips of {CLIP_S:.0f} s, {len(clean)} clean clips for the threshold\n")
        report("built-in", backends["built-in"], clips, clean, pool, seed)
        if len(backends) > 1 or args.side_by_side:
            side_by_side(backends, pool, args.side_clips, args.side_clean, seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
