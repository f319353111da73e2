"""Intonation transfer: the translation rises and falls where the speaker did, and keeps its own accents."""

import numpy as np
import pytest

from engine.audio import SAMPLE_RATE_HZ, load_audio
from engine.expressivity_metrics import contour_correlation
from engine.prosody import ExpressiveOptions, ExpressiveStage
from engine.prosody.analysis import pause_layout, track_f0
from engine.prosody.intonation import pitch_shift_st
from tests.conftest import espeak
from tests.test_prosody_analysis import harmonic


@pytest.fixture(scope="module")
def translation(speech_dir):
    audio = load_audio(espeak("Bienvenidos a la reunión semanal del equipo", speech_dir / "tr.wav", voice="es"))
    return (audio / np.abs(audio).max() * 0.5).astype(np.float32)


def valley(seconds: float = 3.0) -> np.ndarray:
    """A speaker whose pitch falls by 5 semitones, then rises by 8 (a question's final rise)."""
    n = round(seconds * SAMPLE_RATE_HZ)
    st = np.concatenate([np.linspace(0.0, -5.0, n // 2), np.linspace(-5.0, 3.0, n - n // 2)])
    return harmonic(160.0 * 2 ** (st / 12))


def test_the_speakers_contour_is_carried_over(translation):
    source = valley()
    out = ExpressiveStage(ExpressiveOptions()).apply(source, translation, "spa", "eng")
    own = ExpressiveStage(ExpressiveOptions(contour_follow=0.0)).apply(source, translation, "spa", "eng")
    followed, neutral = contour_correlation(source, out), contour_correlation(source, translation)
    assert followed > 0.7 and followed > neutral + 0.3
    assert followed > contour_correlation(source, own) + 0.2


def test_no_voicing_means_no_shift(translation):
    options = ExpressiveOptions()
    silent = np.zeros(SAMPLE_RATE_HZ, np.float32)
    shift = pitch_shift_st(track_f0(translation), track_f0(silent), pause_layout(silent, 0.2), options)
    assert shift.shape == track_f0(translation).shape and not shift.any()


def test_shift_is_bounded_and_zero_away_from_voicing(translation):
    options = ExpressiveOptions(max_shift_st=3.0)
    high = harmonic(np.full(2 * SAMPLE_RATE_HZ, 400.0))  # far above the Spanish voice
    f0 = track_f0(translation)
    shift = pitch_shift_st(f0, track_f0(high), pause_layout(high, 0.2), options)
    assert shift.max() <= 3.0 + 1e-9 and np.median(shift[np.isfinite(f0)]) > 2.5
    first_voiced = int(np.argmax(np.isfinite(f0)))
    assert not shift[: max(0, first_voiced - 8)].any()  # before the voice starts (less the ramp) nothing moves
