"""Hand-written prosody signal processing against the field's libraries, side by side on the same espeak-ng speech.

Printed by ``bench/expressive.py --libraries``. Four jobs, each with the figures that decide it:

* **F0 tracking**: the clips are re-synthesised with WORLD (Morise et al. 2016) from a known, smoothed F0 contour, so
  the true F0 of every 10 ms frame is known. Gross pitch error (GPE: voiced frames more than 20 % off), fine error
  (mean |cents| of the others) and voicing decision error (VDE), clean and with white noise at 10 dB SNR.
* **Pitch shift** by ±4 semitones: shift accuracy (median F0 of the output against the asked ratio), formant shift
  (mean |change| of the median first and second formants, Praat Burg), and a listening-free artefact proxy: wideband
  PESQ (ITU-T P.862.2) of a round trip (+4 st then −4 st) against the original.
* **Time-stretch** to 0.75× and 1.33× speed: duration error, F0 change (a stretch must not move the pitch) and
  round-trip PESQ (slow down then speed up again).
* **Loudness**: the BS.1770 conformance tone (997 Hz at 0 dBFS reads −3.01 LUFS), and clips shorter than one block.

Every row also gives its real-time factor on this machine (compute seconds per second of audio, first call excluded).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bench.prosody_baselines import resample_variable, wsola, yin_f0
from engine.audio import SAMPLE_RATE_HZ
from engine.prosody.analysis import HOP_S, loudness_lufs, track_f0
from engine.prosody.timescale import retime

SHIFT_ST = 4.0
SPEEDS = (0.75, 4 / 3)
GROSS_ERROR = 0.2
F0_RANGE_HZ = (60.0, 450.0)
CONFORMANCE_TONE_HZ, CONFORMANCE_LUFS = 997.0, -3.01


@dataclass(frozen=True)
class Row:
    """One method's figures for one job; ``figures`` maps a column name to its value."""

    job: str  # "F0", "pitch shift", "time-stretch", "loudness"
    method: str  # library and algorithm
    figures: dict[str, float]  # column → value
    rtf: float  # compute seconds per second of audio


def _timed(function: Callable[[], object], audio_s: float) -> tuple[object, float]:
    function()  # warm-up: imports, JIT, FFT plans
    started = time.perf_counter()
    result = function()
    return result, (time.perf_counter() - started) / audio_s


# ---- F0 trackers: each returns F0 in Hz (NaN unvoiced) at frame times t = i · 10 ms ---------------------------------


def _yin(audio: np.ndarray) -> np.ndarray:
    return yin_f0(audio.astype(np.float32))


def _world_harvest(audio: np.ndarray) -> np.ndarray:
    import pyworld

    f0, _ = pyworld.harvest(audio.astype(np.float64), SAMPLE_RATE_HZ, *F0_RANGE_HZ, frame_period=HOP_S * 1000)
    return np.where(f0 > 0, f0, np.nan)


def _world_dio(audio: np.ndarray) -> np.ndarray:
    import pyworld

    x = audio.astype(np.float64)
    f0, t = pyworld.dio(x, SAMPLE_RATE_HZ, *F0_RANGE_HZ, frame_period=HOP_S * 1000)
    f0 = pyworld.stonemask(x, f0, t, SAMPLE_RATE_HZ)
    return np.where(f0 > 0, f0, np.nan)


def _pyin(audio: np.ndarray) -> np.ndarray:
    import librosa

    hop = round(HOP_S * SAMPLE_RATE_HZ)
    f0, _, _ = librosa.pyin(audio.astype(np.float64), fmin=F0_RANGE_HZ[0], fmax=F0_RANGE_HZ[1], sr=SAMPLE_RATE_HZ,
                            frame_length=1024, hop_length=hop)  # fmt: skip
    return f0


F0_TRACKERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "hand-written YIN": _yin,
    "pyworld Harvest": _world_harvest,
    "pyworld DIO+StoneMask": _world_dio,
    "parselmouth Praat AC (the stage's track_f0)": track_f0,
    "librosa pYIN": _pyin,
}
#: Hop i of the hand-written YIN analyses the 25 ms window (plus lags) starting at i · 10 ms: its centre is ~15 ms on.
YIN_DELAY_HOPS = 1.5


def known_f0_clip(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(speech re-synthesised by WORLD from a smoothed F0 contour, that contour: Hz per 10 ms, NaN unvoiced)."""
    import pyworld

    x = audio.astype(np.float64)
    f0, t = pyworld.harvest(x, SAMPLE_RATE_HZ, *F0_RANGE_HZ, frame_period=HOP_S * 1000)
    voiced = f0 > 0
    smooth = np.copy(f0)
    if voiced.any():
        log_f0 = np.interp(np.arange(f0.shape[0]), np.flatnonzero(voiced), np.log(f0[voiced]))
        smooth = np.where(voiced, np.exp(np.convolve(log_f0, np.ones(5) / 5, mode="same")), 0.0)
    sp, ap = pyworld.cheaptrick(x, smooth, t, SAMPLE_RATE_HZ), pyworld.d4c(x, smooth, t, SAMPLE_RATE_HZ)
    y = pyworld.synthesize(smooth, sp, ap, SAMPLE_RATE_HZ, HOP_S * 1000)[: x.shape[0]]
    return y.astype(np.float32), np.where(smooth > 0, smooth, np.nan)


def f0_errors(truth: np.ndarray, estimate: np.ndarray) -> tuple[float, float, float]:
    """(GPE, fine error in cents, VDE) of ``estimate`` against ``truth`` over their common frames."""
    n = min(truth.shape[0], estimate.shape[0])
    truth, estimate = truth[:n], estimate[:n]
    both = np.isfinite(truth) & np.isfinite(estimate)
    cents = np.abs(1200.0 * np.log2(estimate[both] / truth[both]))
    gross = cents > 1200.0 * math.log2(1.0 + GROSS_ERROR)
    vde = float(np.mean(np.isfinite(truth) != np.isfinite(estimate)))
    return float(gross.mean()) if both.any() else 1.0, float(cents[~gross].mean()) if (~gross).any() else 0.0, vde


def _delayed(f0: np.ndarray, hops: float) -> np.ndarray:
    """F0 per hop moved ``hops`` later (to line a tracker's frames up with the truth's frame centres)."""
    index = np.clip(np.round(np.arange(f0.shape[0]) - hops).astype(int), 0, f0.shape[0] - 1)
    return f0[index]


def white_noise(audio: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """``audio`` plus white noise at ``snr_db`` relative to the speech's power (its active part)."""
    speech = audio[np.abs(audio) > 1e-4]
    power = float(np.mean(np.square(speech))) if speech.size else 1e-8
    noise = np.random.default_rng(seed).standard_normal(audio.shape[0]) * math.sqrt(power / 10 ** (snr_db / 10))
    return (audio + noise).astype(np.float32)


def f0_rows(clips: Sequence[np.ndarray]) -> list[Row]:
    pairs = [known_f0_clip(c) for c in clips]
    audio_s = sum(c.shape[0] for c, _ in pairs) / SAMPLE_RATE_HZ
    rows = []
    for name, tracker in F0_TRACKERS.items():
        delay = YIN_DELAY_HOPS if tracker is _yin else 0.0
        figures = {}
        for label, snr in (("", None), (" 10dB", 10.0)):
            errors = []
            for clip, truth in pairs:
                heard = clip if snr is None else white_noise(clip, snr)
                errors.append(f0_errors(truth, _delayed(tracker(heard), delay)))
            gpe, fine, vde = np.mean(errors, axis=0)
            figures |= {f"GPE{label}": gpe, f"fine c{label}": fine, f"VDE{label}": vde}
        _, rtf = _timed(lambda tracker=tracker: [tracker(c) for c, _ in pairs], audio_s)
        rows.append(Row("F0", name, figures, rtf))
    return rows


# ---- pitch shift and time-stretch: each maps (audio, speed, semitones) to audio; speed 2 halves the duration ---------


def _hand_written(audio: np.ndarray, speed: float, shift_st: float) -> np.ndarray:
    """The stage's own way: WSOLA stretches by pitch ratio / speed, variable-rate resampling shifts the pitch."""
    ratio = 2.0 ** (shift_st / 12.0)
    n_out = int(audio.shape[0] * ratio / speed)
    stretched = wsola(audio, np.arange(n_out) * speed / ratio)
    return stretched if shift_st == 0 else resample_variable(stretched, np.full(stretched.shape[0], ratio))


def _rubberband(
    audio: np.ndarray, speed: float, shift_st: float, formants: bool = True, high_quality: bool = True
) -> np.ndarray:
    import pedalboard

    return pedalboard.time_stretch(
        audio.astype(np.float32)[None], SAMPLE_RATE_HZ, speed, shift_st, high_quality, preserve_formants=formants
    )[0]


def _stage_retime(audio: np.ndarray, speed: float, shift_st: float) -> np.ndarray:
    return retime(audio, speed, shift_st)


def _world(audio: np.ndarray, speed: float, shift_st: float) -> np.ndarray:
    import pyworld

    x = audio.astype(np.float64)
    f0, t = pyworld.dio(x, SAMPLE_RATE_HZ, *F0_RANGE_HZ, frame_period=HOP_S * 1000)
    f0 = pyworld.stonemask(x, f0, t, SAMPLE_RATE_HZ)
    sp, ap = pyworld.cheaptrick(x, f0, t, SAMPLE_RATE_HZ), pyworld.d4c(x, f0, t, SAMPLE_RATE_HZ)
    frames = np.minimum(np.round(np.arange(int(f0.shape[0] / speed)) * speed).astype(int), f0.shape[0] - 1)
    f0_out = f0[frames] * 2.0 ** (shift_st / 12.0)
    return pyworld.synthesize(f0_out, sp[frames], ap[frames], SAMPLE_RATE_HZ, HOP_S * 1000).astype(np.float32)


def _torchaudio(audio: np.ndarray, speed: float, shift_st: float) -> np.ndarray:
    import torch
    import torchaudio.functional as F

    waveform = torch.from_numpy(audio.astype(np.float32))[None]
    if shift_st:
        waveform = F.pitch_shift(waveform, SAMPLE_RATE_HZ, round(shift_st))
    if speed != 1.0:
        n_fft, hop = 512, 128
        window = torch.hann_window(n_fft)
        spec = torch.stft(waveform, n_fft, hop, window=window, return_complex=True)
        advance = torch.linspace(0, math.pi * hop, spec.shape[-2])[..., None]
        spec = F.phase_vocoder(spec, speed, advance)
        waveform = torch.istft(spec, n_fft, hop, window=window)
    return waveform[0].numpy()


MODIFIERS: dict[str, Callable[[np.ndarray, float, float], np.ndarray]] = {
    "hand-written WSOLA + resampling": _hand_written,
    "pedalboard Rubber Band (formants kept)": _rubberband,
    "pedalboard Rubber Band (formants not kept)": lambda a, s, p: _rubberband(a, s, p, formants=False),
    "pedalboard Rubber Band, per-sample arrays (the stage's retime)": _stage_retime,
    "pedalboard Rubber Band fast mode": lambda a, s, p: _rubberband(a, s, p, high_quality=False),
    "pedalboard Rubber Band, short FFT window (the stage's live retime)": lambda a, s, p: retime(a, s, p, live=True),
    "pyworld WORLD re-synthesis": _world,
    "torchaudio phase vocoder + resample": _torchaudio,
}


def median_f0_hz(audio: np.ndarray) -> float:
    voiced = track_f0(audio)
    voiced = voiced[np.isfinite(voiced)]
    return float(np.median(voiced)) if voiced.size else float("nan")


def formants_hz(audio: np.ndarray) -> np.ndarray:
    """Median F1 and F2 (Praat Burg, 5 formants up to 5.5 kHz) over voiced frames."""
    import parselmouth

    sound = parselmouth.Sound(audio.astype(np.float64), SAMPLE_RATE_HZ)
    formant = sound.to_formant_burg(time_step=HOP_S, max_number_of_formants=5, maximum_formant=5500.0)
    pitch = track_f0(audio)
    times = np.flatnonzero(np.isfinite(pitch)) * HOP_S
    values = np.array([[formant.get_value_at_time(k, t) for k in (1, 2)] for t in times])
    return np.nanmedian(values, axis=0)


def round_trip_pesq(original: np.ndarray, back: np.ndarray) -> float:
    """Wideband PESQ of a there-and-back modification against the original (same length; 1 … 4.64)."""
    from pesq import pesq

    n = min(original.shape[0], back.shape[0])
    return float(pesq(SAMPLE_RATE_HZ, original[:n].astype(np.float64), back[:n].astype(np.float64), "wb"))


def modification_rows(clips: Sequence[np.ndarray]) -> list[Row]:
    audio_s = sum(c.shape[0] for c in clips) / SAMPLE_RATE_HZ
    rows = []
    for name, modify in MODIFIERS.items():
        shift_error, formant_change, shift_pesq = [], [], []
        for shift in (SHIFT_ST, -SHIFT_ST):
            for clip in clips:
                out = modify(clip, 1.0, shift)
                shift_error.append(abs(12.0 * math.log2(median_f0_hz(out) / median_f0_hz(clip)) - shift))
                formant_change.append(100.0 * float(np.mean(np.abs(formants_hz(out) / formants_hz(clip) - 1.0))))
                shift_pesq.append(round_trip_pesq(clip, modify(out, 1.0, -shift)))
        _, rtf = _timed(lambda modify=modify: [modify(c, 1.0, SHIFT_ST) for c in clips], audio_s)
        figures = {"shift err st": np.mean(shift_error), "formant %": np.mean(formant_change),
                   "PESQ": np.mean(shift_pesq)}  # fmt: skip
        rows.append(Row("pitch shift", name, figures, rtf))
        duration_error, pitch_moved, stretch_pesq = [], [], []
        for speed in SPEEDS:
            for clip in clips:
                out = modify(clip, speed, 0.0)
                duration_error.append(100.0 * abs(out.shape[0] * speed / clip.shape[0] - 1.0))
                pitch_moved.append(abs(12.0 * math.log2(median_f0_hz(out) / median_f0_hz(clip))))
                stretch_pesq.append(round_trip_pesq(clip, modify(out, 1.0 / speed, 0.0)))
        _, rtf = _timed(lambda modify=modify: [modify(c, SPEEDS[0], 0.0) for c in clips], audio_s)
        figures = {"duration err %": np.mean(duration_error), "F0 moved st": np.mean(pitch_moved),
                   "PESQ": np.mean(stretch_pesq)}  # fmt: skip
        rows.append(Row("time-stretch", name, figures, rtf))
    return rows


# ---- loudness -------------------------------------------------------------------------------------------------------


def _torchaudio_lufs(audio: np.ndarray) -> float:
    import torch
    import torchaudio.functional as F

    return float(F.loudness(torch.from_numpy(audio.astype(np.float32))[None], SAMPLE_RATE_HZ))


def loudness_rows(clips: Sequence[np.ndarray]) -> list[Row]:
    tone = np.sin(2 * np.pi * CONFORMANCE_TONE_HZ * np.arange(5 * SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ).astype(np.float32)
    short = [c[c.shape[0] // 2 : c.shape[0] // 2 + round(0.3 * SAMPLE_RATE_HZ)] for c in clips]  # mid-speech
    audio_s = sum(c.shape[0] for c in clips) / SAMPLE_RATE_HZ
    rows = []
    for name, meter in (("hand-written BS.1770-4", loudness_lufs), ("torchaudio loudness", _torchaudio_lufs)):
        try:
            short_ok = float(np.mean([math.isfinite(meter(c)) for c in short]))
        except RuntimeError:  # torchaudio needs at least one 400 ms block
            short_ok = 0.0
        figures = {"tone err LU": abs(meter(tone) - CONFORMANCE_LUFS), "< 400 ms ok": short_ok}
        _, rtf = _timed(lambda meter=meter: [meter(c) for c in clips], audio_s)
        rows.append(Row("loudness", name, figures, rtf))
    return rows


def print_table(rows: Sequence[Row]) -> None:
    """One markdown table per job, best first in the job's first column's sense is left to the reader."""
    for job in dict.fromkeys(r.job for r in rows):
        mine = [r for r in rows if r.job == job]
        columns = list(mine[0].figures)
        print(f"\n{job}:\n")
        print("| method | " + " | ".join(columns) + " | RTF |")
        print("|---" * (len(columns) + 2) + "|")
        for r in mine:
            print(f"| {r.method} | " + " | ".join(f"{r.figures[c]:.3f}" for c in columns) + f" | {r.rtf:.4f} |")


def library_comparison(clips: Sequence[np.ndarray]) -> list[Row]:
    """Every job's rows on ``clips`` (16 kHz mono float32 speech)."""
    return [*f0_rows(clips), *modification_rows(clips), *loudness_rows(clips)]
