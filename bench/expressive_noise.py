"""Noisy rooms: the expressive stage fed a source mixed with white, pink or babble noise at 20 and 10 dB SNR.

Printed by ``bench/expressive.py --noise``. The metrics compare the output with the *clean* source (what the speaker
did), so a stage that takes noise for speech, pauses or pitch, or transfers the noise's loudness, loses on them.
The target: at 10 dB SNR every metric within 15 % of its clean value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from engine.expressivity_metrics import Expressivity, expressivity
from engine.prosody import ExpressiveStage

SNRS_DB = (20.0, 10.0)
#: Babble: this many other talkers at once.
BABBLE_TALKERS = 4
WITHIN = 0.15


def white(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n)


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f power spectrum: white noise shaped by 1/sqrt(f) in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.shape[0]), 1.0))
    return np.fft.irfft(spectrum, n)


def babble_maker(talkers: Sequence[np.ndarray]) -> Callable[[int, np.random.Generator], np.ndarray]:
    """Noise of ``BABBLE_TALKERS`` of ``talkers`` (16 kHz speech) talking at once, each looped from a random offset."""

    def babble(n: int, rng: np.random.Generator) -> np.ndarray:
        out = np.zeros(n)
        for k in rng.choice(len(talkers), BABBLE_TALKERS, replace=False):
            voice = np.tile(talkers[k], math.ceil(n / talkers[k].shape[0]) + 1)
            start = int(rng.integers(talkers[k].shape[0]))
            out += voice[start : start + n] / max(1e-6, float(np.std(talkers[k])))
        return out

    return babble


def mix(source: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``source`` plus ``noise`` scaled to ``snr_db`` below the power of the source's speech (its loud half)."""
    power = np.square(source.astype(np.float64))
    speech_power = float(np.mean(power[power >= np.median(power)])) if power.size else 0.0
    noise_power = float(np.mean(np.square(noise))) or 1.0
    scaled = noise * math.sqrt(speech_power / noise_power / 10 ** (snr_db / 10))
    return np.clip(source + scaled, -1.0, 1.0).astype(np.float32)


def noise_table(
    sources: Sequence[np.ndarray], outputs: Sequence[np.ndarray], stage: ExpressiveStage, talkers: Sequence[np.ndarray]
) -> list[tuple[str, Expressivity]]:
    """(condition, metrics against the clean sources) for clean, then each noise at each SNR."""
    clean = [stage.apply(s, o, "spa", "eng") for s, o in zip(sources, outputs, strict=True)]
    rows = [("clean", expressivity(sources, clean))]
    denoised = ExpressiveStage(replace(stage.options, denoise_analysis=True), stage.voices)
    noises = {"white": white, "pink": pink, "babble": babble_maker(talkers)}
    for name, make in noises.items():
        for snr in SNRS_DB:
            rng = np.random.default_rng(round(snr))
            noisy = [mix(s, make(s.shape[0], rng), snr) for s in sources]
            for label, each in (("", stage), (", denoised analysis", denoised)):
                produced = [each.apply(n, o, "spa", "eng") for n, o in zip(noisy, outputs, strict=True)]
                rows.append((f"{name} {snr:.0f} dB{label}", expressivity(sources, produced)))
    return rows


def _within(value: float, clean: float, higher_is_better: bool) -> bool:
    """Within ``WITHIN`` of the clean value (an error may also be at most 0.1 above a near-zero clean error)."""
    if higher_is_better:
        return value >= clean * (1 - WITHIN)
    return value <= max(clean * (1 + WITHIN), clean + 0.1)


def print_noise_table(rows: Sequence[tuple[str, Expressivity]]) -> None:
    fields = (("rate_correlation", True), ("pause_alignment", True), ("f0_error_st", False),
              ("contour_correlation", True), ("loudness_error_lu", False))  # fmt: skip
    print("\n| source | Rate rho | Pause | F0 err st | Contour r | Loudness err LU | 10 dB within 15 % |")
    print("|---|---|---|---|---|---|---|")
    clean = rows[0][1]
    for name, m in rows:
        values = [getattr(m, f) for f, _ in fields]
        ok = all(_within(getattr(m, f), getattr(clean, f), up) for f, up in fields)
        mark = ("yes" if ok else "NO") if "10 dB" in name else ""
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {mark} |")
