"""Expressivity metrics: how closely translated speech follows the source's rate, pauses, pitch and loudness.

Offline stand-ins for the research line's expressivity evaluation (SeamlessExpressive, 2023: speech-rate Spearman
correlation and pause alignment), computed from the signals alone so that they run without its gated models:

* **Rate**: Spearman correlation, over segments, between the source's and the output's syllable rate: syllable
  nuclei per second of speech with pauses left out, counted by the stage's own detector
  (:func:`engine.prosody.analysis.syllable_nuclei`, after de Jong & Wempe 2009).
* **Pause**: pauses (≥ 200 ms silences inside the speech) matched one-to-one, nearest first, when their centres lie
  within 10 % of the speech span of each other (a translation puts the matching word boundary at a slightly
  different place); each matched pair scores its duration ratio (shorter / longer), the sum is divided by the larger
  pause count, so missing and extra pauses both cost; two segments without pauses agree perfectly (1.0). In [0, 1].
* **F0**: |median F0 difference| in semitones (Praat's tracker), over segments where both sides are voiced.
* **F0 contour**: Pearson correlation of the two normalised log-F0 contours (semitones about each side's median) over
  aligned relative positions in the speech (pauses left out): each side's voiced hops averaged in
  ``CONTOUR_BINS`` equal bins of relative position, the bins voiced on both sides correlated (at least
  ``MIN_CONTOUR_BINS``); mean over the segments where it is defined. It asks whether the output rises and falls
  where the speaker did (declination, question rise, emphasis), whatever the two voices' pitch.
* **Loudness**: |integrated loudness difference| in LU (ITU-R BS.1770-4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

from engine.prosody.analysis import HOP_S, PitchProfile, loudness_lufs, pause_layout, syllable_rate, track_f0

#: Pause matching: positions further apart than this fraction of the speech span do not match.
PAUSE_POSITION_TOLERANCE = 0.1
#: F0 contour correlation: bins of relative position, and the fewest bins voiced on both sides that define it.
CONTOUR_BINS = 20
MIN_CONTOUR_BINS = 6


@dataclass(frozen=True)
class Expressivity:
    rate_correlation: float  # Spearman's rho, −1…1, higher is better
    pause_alignment: float  # 0…1, higher is better
    f0_error_st: float  # semitones, lower is better
    contour_correlation: float  # Pearson's r, −1…1, higher is better
    loudness_error_lu: float  # LU, lower is better


def speech_rate_correlation(
    sources: Sequence[np.ndarray], outputs: Sequence[np.ndarray], min_pause_s: float = 0.2
) -> float:
    """Spearman correlation of syllable rate between paired source and output segments (at least three pairs).
    When either side's rates are all equal the correlation is undefined; it counts as 0 (the rate is not followed)."""
    if len(sources) != len(outputs) or len(sources) < 3:
        raise ValueError("rate correlation needs at least three source/output pairs")
    theirs = [syllable_rate(s, min_pause_s) for s in sources]
    ours = [syllable_rate(o, min_pause_s) for o in outputs]
    if len(set(theirs)) == 1 or len(set(ours)) == 1:
        return 0.0
    return float(spearmanr(theirs, ours).statistic)


def _pauses_relative(audio: np.ndarray, min_pause_s: float) -> list[tuple[float, float]]:
    """(centre as a fraction of the speech span, duration in seconds) of each pause inside the speech."""
    layout = pause_layout(audio, min_pause_s)
    if layout.speech is None:
        return []
    first, last = layout.speech
    return [(((start + end) / 2 - first) / (last - first), (end - start) * HOP_S) for start, end in layout.pauses]


def pause_alignment(source: np.ndarray, output: np.ndarray, min_pause_s: float = 0.2) -> float:
    """How well the output's pauses line up with the source's, in [0, 1] (see the section comment above)."""
    theirs, ours = _pauses_relative(source, min_pause_s), _pauses_relative(output, min_pause_s)
    if not theirs and not ours:
        return 1.0
    candidates = sorted((abs(p - q), i, j) for i, (p, _) in enumerate(theirs) for j, (q, _) in enumerate(ours))
    used_source, used_output, total = set(), set(), 0.0
    for distance, i, j in candidates:
        if distance >= PAUSE_POSITION_TOLERANCE or i in used_source or j in used_output:
            continue
        used_source.add(i)
        used_output.add(j)
        a, b = theirs[i][1], ours[j][1]
        total += min(a, b) / max(a, b)
    return total / max(len(theirs), len(ours))


def f0_median_error_st(source: np.ndarray, output: np.ndarray) -> float | None:
    """|median F0(output) − median F0(source)| in semitones; None when either side has no voiced speech."""
    a, b = PitchProfile.of(track_f0(source)), PitchProfile.of(track_f0(output))
    if a.median_hz is None or b.median_hz is None:
        return None
    return abs(12.0 * math.log2(b.median_hz / a.median_hz))


def binned_contour_st(audio: np.ndarray, min_pause_s: float = 0.2) -> np.ndarray:
    """Mean log-F0 (semitones about the median) of the voiced hops in each of ``CONTOUR_BINS`` equal bins of relative
    position in the speech, pauses left out; NaN for bins without voicing (all NaN when nothing is voiced)."""
    f0 = track_f0(audio)
    median = PitchProfile.of(f0).median_hz
    positions = pause_layout(audio, min_pause_s).hop_positions()[: f0.shape[0]]
    out = np.full(CONTOUR_BINS, np.nan)
    voiced = np.isfinite(f0) & np.isfinite(positions)
    if median is None or not voiced.any():
        return out
    bins = np.minimum((positions[voiced] * CONTOUR_BINS).astype(int), CONTOUR_BINS - 1)
    st = 12.0 * np.log2(f0[voiced] / median)
    for b in np.unique(bins):
        out[b] = float(np.mean(st[bins == b]))
    return out


def contour_correlation(source: np.ndarray, output: np.ndarray, min_pause_s: float = 0.2) -> float | None:
    """Pearson correlation of the binned F0 contours (see the module docstring); None when fewer than
    ``MIN_CONTOUR_BINS`` bins are voiced on both sides or either side is flat."""
    a, b = binned_contour_st(source, min_pause_s), binned_contour_st(output, min_pause_s)
    both = np.isfinite(a) & np.isfinite(b)
    if both.sum() < MIN_CONTOUR_BINS or np.std(a[both]) == 0 or np.std(b[both]) == 0:
        return None
    return float(np.corrcoef(a[both], b[both])[0, 1])


def loudness_error_lu(source: np.ndarray, output: np.ndarray) -> float:
    """|integrated loudness(output) − loudness(source)| in LU (BS.1770-4); inf when only one side is silent."""
    a, b = loudness_lufs(source), loudness_lufs(output)
    if a == b:  # both silent (−inf) or identical
        return 0.0
    return abs(b - a)


def expressivity(
    sources: Sequence[np.ndarray], outputs: Sequence[np.ndarray], min_pause_s: float = 0.2
) -> Expressivity:
    """All four expressivity figures over paired segments (16 kHz mono float32 arrays)."""
    pairs = list(zip(sources, outputs, strict=True))
    f0_errors = [e for s, o in pairs if (e := f0_median_error_st(s, o)) is not None]
    contours = [r for s, o in pairs if (r := contour_correlation(s, o, min_pause_s)) is not None]
    return Expressivity(
        rate_correlation=speech_rate_correlation(sources, outputs, min_pause_s),
        pause_alignment=sum(pause_alignment(s, o, min_pause_s) for s, o in zip(sources, outputs, strict=True))
        / len(sources),
        f0_error_st=sum(f0_errors) / len(f0_errors) if f0_errors else float("nan"),
        contour_correlation=sum(contours) / len(contours) if contours else float("nan"),
        loudness_error_lu=sum(loudness_error_lu(s, o) for s, o in zip(sources, outputs, strict=True)) / len(sources),
    )
