"""Prosody analysis on known signals: Praat-based F0 on harmonic tones, the contour metric on known contours."""

import numpy as np
import pytest

from engine.audio import SAMPLE_RATE_HZ
from engine.expressivity_metrics import binned_contour_st, contour_correlation
from engine.prosody.analysis import PitchProfile, track_f0


def harmonic(f0_hz: np.ndarray) -> np.ndarray:
    """A voice-like tone (10 harmonics, falling 6 dB per octave) following ``f0_hz`` per sample."""
    phase = 2 * np.pi * np.cumsum(f0_hz) / SAMPLE_RATE_HZ
    return (0.2 * sum(np.sin(k * phase) / k for k in range(1, 11))).astype(np.float32)


@pytest.mark.parametrize("f0_hz", [90.0, 160.0, 300.0])
def test_f0_of_a_steady_tone(f0_hz):
    f0 = track_f0(harmonic(np.full(SAMPLE_RATE_HZ, f0_hz)))
    assert np.isfinite(f0).mean() > 0.8
    assert PitchProfile.of(f0).median_hz == pytest.approx(f0_hz, rel=0.01)


def test_f0_follows_a_glide_and_silence_is_unvoiced():
    glide = harmonic(np.geomspace(120.0, 240.0, SAMPLE_RATE_HZ))
    f0 = track_f0(np.concatenate([glide, np.zeros(SAMPLE_RATE_HZ // 2, np.float32)]))
    assert f0.shape[0] == 150
    assert np.nanmedian(f0[10:30]) < 140 < 200 < np.nanmedian(f0[75:95])
    assert np.isnan(f0[105:]).all()
    assert np.isnan(track_f0(np.zeros(100, np.float32))).all()  # shorter than Praat's window: unvoiced, no error


def test_contour_correlation_on_known_contours():
    rise = harmonic(np.geomspace(120.0, 200.0, SAMPLE_RATE_HZ))
    fall = harmonic(np.geomspace(200.0, 120.0, SAMPLE_RATE_HZ))
    higher_rise = harmonic(np.geomspace(180.0, 300.0, 2 * SAMPLE_RATE_HZ))  # other pitch, other duration
    assert contour_correlation(rise, higher_rise) > 0.95
    assert contour_correlation(rise, fall) < -0.95
    assert contour_correlation(rise, np.zeros(SAMPLE_RATE_HZ, np.float32)) is None
    assert np.isfinite(binned_contour_st(rise)).all()
