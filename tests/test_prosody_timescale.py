"""Rubber Band time-scale and pitch modification: duration, pitch and formants where they were asked to be."""

import numpy as np
import pytest

from engine.audio import SAMPLE_RATE_HZ
from engine.prosody.analysis import PitchProfile, track_f0
from engine.prosody.timescale import retime
from tests.test_prosody_analysis import harmonic


@pytest.mark.parametrize("speed", [0.7, 1.0, 1.4])
def test_duration_follows_the_speed_and_pitch_stays(speed):
    tone = harmonic(np.full(2 * SAMPLE_RATE_HZ, 150.0))
    out = retime(tone, speed)
    assert out.dtype == np.float32 and out.shape[0] == pytest.approx(tone.shape[0] / speed, rel=0.01)
    assert PitchProfile.of(track_f0(out)).median_hz == pytest.approx(150.0, rel=0.02)


@pytest.mark.parametrize("shift_st", [-4.0, 4.0, 9.0])
def test_pitch_moves_by_the_asked_semitones(shift_st):
    tone = harmonic(np.full(2 * SAMPLE_RATE_HZ, 150.0))
    out = retime(tone, 1.0, shift_st)
    moved = 12 * np.log2(PitchProfile.of(track_f0(out)).median_hz / 150.0)
    assert moved == pytest.approx(shift_st, abs=0.3)


def test_a_per_sample_contour_is_followed():
    tone = harmonic(np.full(2 * SAMPLE_RATE_HZ, 150.0))
    out = retime(tone, 1.0, np.linspace(0.0, 6.0, tone.shape[0]))
    f0 = track_f0(out)
    early, late = np.nanmedian(f0[20:50]), np.nanmedian(f0[150:180])
    assert 12 * np.log2(late / early) == pytest.approx(4.2, abs=1.0)  # 0.35 → 1.65 s of a 0 → 6 st ramp
