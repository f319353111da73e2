"""Watermark benchmark: robustness table (BER, TPR at FPR <= 1e-3 per attack), quality (SNR, wideband PESQ), speed.

Speech comes from espeak-ng (voices, languages, speeds and pitches varied), 16 kHz mono. The detection threshold is
the highest score over the clean (never marked) clips, so the empirical false-positive rate on them is 0; with at
least 1000 clean clips that bounds it at <= 1e-3. Attacks use numpy/scipy and ffmpeg (MP3, Opus, pitch shift).
Speed is measured with the process pinned to one CPU core.

    python -m bench.watermark                      # the full run: 50 marked clips, 1000 clean clips
    python -m bench.watermark --clips 8 --clean 100  # a quick look

BER counts a payload the decoder could not read (CRC failed) as 16 wrong bits of 32, a guess; "payload" is the
fraction of clips whose whole payload was read.

Bars (issue 4): BER <= 1 % and TPR >= 0.95 for every required attack (for the splice, also the marked range
found within ±0.5 s at both ends on >= 95 % of clips), SNR >= 25 dB, PESQ >= 4.0, RTF <= 0.005.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, lfilter, resample_poly, sosfilt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere (bench/safety.py
# would otherwise stand in for the safety package)

from safety.watermark import SAMPLE_RATE_HZ, WatermarkConfig, Watermarker, create_watermarker

CLIP_S = 5.0
CROP_S = 2.0
SPLICE_PAD_S = 3.0
#: Localisation error allowed for the splice attack, seconds.
SPLICE_TOLERANCE_S = 0.5
BER_BAR = 0.01
TPR_BAR = 0.95
SNR_BAR_DB = 25.0
PESQ_BAR = 4.0
RTF_BAR = 0.005

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


def clip_of(speech: np.ndarray, rng: np.random.Generator, length_s: float = CLIP_S) -> np.ndarray:
    """A ``length_s`` excerpt at a random offset (zero-padded when the speech is shorter)."""
    length = int(length_s * SAMPLE_RATE_HZ)
    if speech.size <= length:
        return np.pad(speech, (0, length - speech.size)).astype(np.float32)
    start = int(rng.integers(0, speech.size - length))
    return speech[start : start + length].astype(np.float32)


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    common = gcd(from_hz, to_hz)
    return resample_poly(samples, to_hz // common, from_hz // common).astype(np.float32)


def ffmpeg_roundtrip(samples: np.ndarray, *args: str) -> np.ndarray:
    """Encode with ffmpeg (``args`` = codec options and container), decode back to 16 kHz mono float32."""
    raw = ["-f", "f32le", "-ar", str(SAMPLE_RATE_HZ), "-ac", "1"]
    encode = ["ffmpeg", "-nostdin", "-v", "error", *raw, "-i", "pipe:0", *args, "pipe:1"]
    encoded = subprocess.run(encode, input=samples.astype(np.float32).tobytes(), capture_output=True, check=True)
    decode = ["ffmpeg", "-nostdin", "-v", "error", "-i", "pipe:0", *raw, "pipe:1"]
    decoded = subprocess.run(decode, input=encoded.stdout, capture_output=True, check=True)
    out = np.frombuffer(decoded.stdout, dtype=np.float32)
    return np.pad(out, (0, max(0, samples.size - out.size)))[: samples.size].copy()


def add_noise(samples: np.ndarray, snr_db: float, rng: np.random.Generator, pink: bool = False) -> np.ndarray:
    noise = rng.standard_normal(samples.size)
    if pink:  # 1/f power: shape white noise by 1/sqrt(f) in the frequency domain
        spectrum = np.fft.rfft(noise)
        spectrum[1:] /= np.sqrt(np.arange(1, spectrum.size))
        spectrum[0] = 0.0
        noise = np.fft.irfft(spectrum, n=samples.size)
    noise *= np.sqrt(np.mean(samples**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (samples + noise).astype(np.float32)


def quantise(samples: np.ndarray, bits: int) -> np.ndarray:
    levels = 2 ** (bits - 1)
    return (np.clip(np.round(samples * levels), -levels, levels - 1) / levels).astype(np.float32)


def filtered(samples: np.ndarray, cutoff_hz: float, kind: str, order: int) -> np.ndarray:
    sos = butter(order, cutoff_hz, btype=kind, fs=SAMPLE_RATE_HZ, output="sos")
    return sosfilt(sos, samples).astype(np.float32)


def echo(samples: np.ndarray, delay_s: float = 0.1, gain: float = 0.4) -> np.ndarray:
    delay = int(delay_s * SAMPLE_RATE_HZ)
    return lfilter([1.0] + [0.0] * (delay - 1) + [gain], [1.0], samples).astype(np.float32)


def pitch_shift(samples: np.ndarray, factor: float) -> np.ndarray:
    """Pitch up by ``factor`` at unchanged duration (ffmpeg asetrate + atempo)."""
    rate = int(SAMPLE_RATE_HZ * factor)
    raw = ["-f", "f32le", "-ar", str(SAMPLE_RATE_HZ), "-ac", "1"]
    filters = f"asetrate={rate},aresample={SAMPLE_RATE_HZ},atempo={1 / factor:.6f}"
    cmd = ["ffmpeg", "-nostdin", "-v", "error", *raw, "-i", "pipe:0", "-af", filters, *raw, "pipe:1"]
    proc = subprocess.run(cmd, input=samples.astype(np.float32).tobytes(), capture_output=True, check=True)
    out = np.frombuffer(proc.stdout, dtype=np.float32)
    return np.pad(out, (0, max(0, samples.size - out.size)))[: samples.size].copy()


Attack = Callable[[np.ndarray, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class AttackSpec:
    name: str
    apply: Attack
    required: bool = True


ATTACKS = (
    AttackSpec("none", lambda x, rng: x),
    AttackSpec("resample 8 kHz", lambda x, rng: resample(resample(x, SAMPLE_RATE_HZ, 8000), 8000, SAMPLE_RATE_HZ)),
    AttackSpec("resample 44.1 kHz", lambda x, rng: resample(resample(x, SAMPLE_RATE_HZ, 44100), 44100, 16000)),
    AttackSpec("low-pass 3.4 kHz", lambda x, rng: filtered(x, 3400.0, "lowpass", 8)),
    AttackSpec("high-pass 500 Hz", lambda x, rng: filtered(x, 500.0, "highpass", 4)),
    AttackSpec("white noise 20 dB", lambda x, rng: add_noise(x, 20.0, rng)),
    AttackSpec("MP3 64k", lambda x, rng: ffmpeg_roundtrip(x, "-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3")),
    AttackSpec("MP3 128k", lambda x, rng: ffmpeg_roundtrip(x, "-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3")),
    AttackSpec("Opus 32k", lambda x, rng: ffmpeg_roundtrip(x, "-c:a", "libopus", "-b:a", "32k", "-f", "ogg")),
    AttackSpec("int16", lambda x, rng: quantise(x, 16)),
    AttackSpec("8-bit", lambda x, rng: quantise(x, 8)),
    AttackSpec("gain +6 dB", lambda x, rng: np.clip(x * 10 ** (6 / 20), -1.0, 1.0).astype(np.float32)),
    AttackSpec("gain -6 dB", lambda x, rng: (x * 10 ** (-6 / 20)).astype(np.float32)),
    AttackSpec("crop 2 s", lambda x, rng: clip_of(x, rng, CROP_S)),
    AttackSpec("speed 0.9x", lambda x, rng: resample(x, 9, 10), required=False),
    AttackSpec("speed 1.1x", lambda x, rng: resample(x, 11, 10), required=False),
    AttackSpec("echo 100 ms", lambda x, rng: echo(x), required=False),
    AttackSpec("pitch +6 %", lambda x, rng: pitch_shift(x, 1.06), required=False),
    AttackSpec("pink noise 10 dB", lambda x, rng: add_noise(x, 10.0, rng, pink=True), required=False),
)


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
    backend: Watermarker, clips: list[np.ndarray], marked: list[np.ndarray], payloads: list[int],
    threshold: float, pool: list[np.ndarray], seed: int,
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


def real_time_factor(backend: Watermarker, clips: list[np.ndarray], payloads: list[int]) -> float:
    """Embed + detect seconds per second of audio, pinned to one CPU core, after one untimed warm-up call."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    backend.detect(backend.embed(clips[0], SAMPLE_RATE_HZ, payloads[0]), SAMPLE_RATE_HZ)  # warm caches (FFT plans)
    start = time.process_time()
    for audio, payload in zip(clips, payloads, strict=True):
        backend.detect(backend.embed(audio, SAMPLE_RATE_HZ, payload), SAMPLE_RATE_HZ)
    return (time.process_time() - start) / (sum(c.size for c in clips) / SAMPLE_RATE_HZ)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=50, help="marked clips per attack (bar: >= 50)")
    parser.add_argument("--clean", type=int, default=1000, help="clean clips for the threshold (bar: >= 1000)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    backends: dict[str, Watermarker] = {"built-in": create_watermarker(WatermarkConfig(key_secret="bench-key"))}
    if shutil.which("audiowmark"):
        backends["audiowmark"] = create_watermarker(WatermarkConfig(backend="audiowmark", audiowmark_detect_speed=True))

    rng = np.random.default_rng(args.seed)
    clip_voices = voices(args.clips, args.seed)
    speech = [v.synthesise() for v in clip_voices]
    clips = [clip_of(s, rng) for s in speech]
    pool = [v.synthesise() for v in voices(max(48, args.clean // 20), args.seed + 1)]
    clean = [clip_of(pool[i % len(pool)] * rng.uniform(0.3, 1.0), rng) for i in range(args.clean)]
    payloads = [int(p) for p in rng.integers(0, 2**32, size=len(clips))]
    print(f"{len(clips)} marked clips of {CLIP_S:.0f} s, {len(clean)} clean clips for the threshold\n")

    for name, backend in backends.items():
        marked = [backend.embed(c, SAMPLE_RATE_HZ, p) for c, p in zip(clips, payloads, strict=True)]
        clean_results = [backend.detect(c, SAMPLE_RATE_HZ) for c in clean]
        threshold = max(result.score for result in clean_results)
        rows = evaluate(backend, clips, marked, payloads, threshold, pool, args.seed)
        print(f"== {name}: threshold {threshold:.2f} (max of {len(clean)} clean scores; FPR <= {1 / len(clean):.0e})")
        false_alarms = sum(result.detected for result in clean_results)
        false_payloads = sum(result.payload is not None for result in clean_results)
        print(f"clean clips detected by the backend's own rule: {false_alarms}, with a payload read: {false_payloads}")
        print(f"{'attack':26s} {'BER':>7s} {'TPR':>5s} {'payload':>7s}  bar")
        for row in rows:
            verdict = ("ok" if row.passes() else "FAIL") if row.required else "report"
            print(f"{row.attack:26s} {row.ber:7.4f} {row.tpr:5.2f} {row.decoded:7.2f}  {verdict} {row.note}")
        unread = [
            voice.language + (voice.variant or "")
            for voice, audio, payload in zip(clip_voices, marked, payloads, strict=True)
            if backend.detect(audio, SAMPLE_RATE_HZ).payload != payload
        ]
        print(f"payload not read without attack: {', '.join(unread) or 'none'}")
        snrs = [snr_db(c, m) for c, m in zip(clips, marked, strict=True)]
        scores = [pesq_wb(c, m) for c, m in zip(clips, marked, strict=True)]
        print(f"SNR dB: mean {np.mean(snrs):.1f}, min {np.min(snrs):.1f} (bar >= {SNR_BAR_DB})")
        if scores[0] is None:
            print("PESQ: not measured (pip install pesq)")
        else:
            print(f"PESQ wb: mean {np.mean(scores):.2f}, min {np.min(scores):.2f} (bar >= {PESQ_BAR})")
        rtf = real_time_factor(backend, clips[:10], payloads[:10])
        print(f"embed + detect real-time factor, one core: {rtf:.4f} (bar <= {RTF_BAR})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
