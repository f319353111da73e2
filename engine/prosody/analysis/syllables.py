"""Syllable nuclei: the one syllable detector used by the stage (pace) and by the metrics (rate)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.signal import butter, find_peaks, sosfiltfilt

from engine.audio import SAMPLE_RATE_HZ
from engine.prosody.analysis.activity import NOISE_SPREAD_STD, activity, pause_layout
from engine.prosody.analysis.frames import HOP_S, frame_levels_db, moving_average

#: Syllable nuclei (after de Jong & Wempe 2009): peaks of the 30 ms-smoothed intensity of the vowel-formant band
#: (300–2500 Hz) at least 2 dB above the dips around them, above the median intensity of the sound − 3 dB, at least
#: 50 ms apart (with 60 ms the Spanish rate of espeak-ng renderings followed the set speed with ρ 0.91 instead of
#: 0.95: close nuclei of fast speech merged).
NUCLEUS_BAND_HZ = (300.0, 2500.0)
NUCLEUS_SMOOTH_S = 0.03
NUCLEUS_DIP_DB = 2.0
NUCLEUS_FLOOR_DB = -3.0
NUCLEUS_MIN_GAP_S = 0.05


@lru_cache(maxsize=1)
def _nucleus_band() -> np.ndarray:
    return butter(4, NUCLEUS_BAND_HZ, btype="bandpass", fs=SAMPLE_RATE_HZ, output="sos")


def syllable_nuclei(audio: np.ndarray) -> np.ndarray:
    """10 ms hop index of each syllable nucleus of ``audio`` (16 kHz mono): intensity peaks of the vowel-formant band.

    The band matters: full-band intensity also peaks on low-frequency voicing and on fricatives, so the count then
    depended on the voice. On 135 espeak-ng renderings (3 sentences per language × 5 English or 4 Spanish voices ×
    115–235 wpm) the band-limited rate follows the set speed with Spearman ρ 0.97 (English) and 0.95 (Spanish),
    against 0.94 and 0.86 full-band, and its spread at one speed across voices and sentences fell from 7–9 % to 4–5 %.

    Only peaks on active hops count: in a noisy room the noise's own peaks in the pauses (other talkers' syllables,
    in babble) are not the speaker's syllables.
    """
    active = activity(audio, spread_std=NOISE_SPREAD_STD)
    if not active.any():
        return np.zeros(0, dtype=int)
    levels = frame_levels_db(sosfiltfilt(_nucleus_band(), audio).astype(np.float32))
    smooth = moving_average(levels, round(NUCLEUS_SMOOTH_S / HOP_S))
    peaks, _ = find_peaks(
        smooth,
        height=float(np.median(smooth[active])) + NUCLEUS_FLOOR_DB,
        prominence=NUCLEUS_DIP_DB,
        distance=round(NUCLEUS_MIN_GAP_S / HOP_S),
    )
    return peaks[active[peaks]]  # same 10 ms hops as the levels


def count_syllables(audio: np.ndarray) -> int:
    """How many syllable nuclei ``audio`` holds."""
    return int(syllable_nuclei(audio).size)


def syllable_rate(audio: np.ndarray, min_pause_s: float = 0.2) -> float:
    """Syllable nuclei per second of speech (pauses of at least ``min_pause_s`` excluded); 0 for silence."""
    speech_hops = pause_layout(audio, min_pause_s).speech_hops
    return count_syllables(audio) / (speech_hops * HOP_S) if speech_hops else 0.0
