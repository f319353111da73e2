"""The built-in detector's resynchronising search: speed, pitch and tempo changes, and honest p-values."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from bench.watermark_attacks import add_noise, echo, pitch_shift, resample, tempo
from engine.audio import SAMPLE_RATE_HZ, load_audio
from safety.watermark import WatermarkKey, make_payload
from safety.watermark.builtin import SpreadSpectrumWatermarker
from safety.watermark.spread.options import WatermarkOptions
from safety.watermark.spread.resync import stretch
from tests.conftest import espeak

PAYLOAD = make_payload(deployment_id=0x0A0B, session_id=0x1234)
_TEXT = (
    "The committee will meet again next Thursday to discuss the budget, the new schedule and the results of the "
    "survey that was sent to every member of the staff last month."
)
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


@pytest.fixture(scope="module")
def watermarker() -> SpreadSpectrumWatermarker:
    return SpreadSpectrumWatermarker(WatermarkKey("resync-test-key"))


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    return load_audio(espeak(_TEXT, tmp_path_factory.mktemp("resync") / "s.wav"))[: 5 * SAMPLE_RATE_HZ]


@pytest.fixture(scope="module")
def marked(watermarker, speech) -> np.ndarray:
    return watermarker.embed(speech, SAMPLE_RATE_HZ, PAYLOAD)


@pytest.mark.parametrize("factor", [0.8, 0.9, 1.1, 1.25])
def test_speed_changes_are_undone(watermarker, marked, factor):
    """Played slower or faster (resampled), over the whole range audiowmark's speed search covers."""
    attacked = resample(marked, 100, round(100 * factor))
    assert watermarker.detect(marked, SAMPLE_RATE_HZ).payload == PAYLOAD
    result = watermarker.detect(attacked, SAMPLE_RATE_HZ)
    assert result.detected and result.payload == PAYLOAD
    assert result.p_value < 1e-3
    assert result.marked_s and result.marked_s[-1][1] <= attacked.size / SAMPLE_RATE_HZ + 0.5  # recording's time


@needs_ffmpeg
def test_pitch_shift_is_undone(watermarker, marked):
    assert watermarker.detect(pitch_shift(marked, 1.06), SAMPLE_RATE_HZ).payload == PAYLOAD


@needs_ffmpeg
def test_tempo_change_is_undone(watermarker, marked):
    """Tempo -5 % (WSOLA, pitch kept) is found by the tempo hypotheses. (At ±10 % WSOLA's grain shifts break the
    symbols' time pattern on most clips: the bench's tempo rows do not meet the bar yet.)"""
    assert watermarker.detect(tempo(marked, 0.95), SAMPLE_RATE_HZ).payload == PAYLOAD


def test_echo_and_loud_pink_noise(watermarker, marked):
    assert watermarker.detect(echo(marked), SAMPLE_RATE_HZ).payload == PAYLOAD
    noisy = add_noise(marked, 10.0, np.random.default_rng(0), pink=True)
    assert watermarker.detect(noisy, SAMPLE_RATE_HZ).detected


def test_the_search_counts_every_hypothesis(watermarker, speech, marked):
    """Unmarked speech searched over every hypothesis is not detected, and a marked clip's p-value includes the
    number of hypotheses the search can try (about 80)."""
    search = watermarker._detector._search
    assert search.hypotheses > 70
    speeds = [a for a, g in search.coarse if g == 1.0]
    assert min(speeds) <= 0.8 * 1.016 and max(speeds) >= 1.25 / 1.016  # audiowmark's 0.8-1.25, within a step
    assert any(a == g and abs(a - 1 / 1.1) < 0.01 for a, g in search.coarse)  # tempo +10 %
    assert any(a == 1.0 and abs(g - 1.06) < 0.015 for a, g in search.coarse)  # pitch
    result = watermarker.detect(speech, SAMPLE_RATE_HZ)
    assert not result.detected and result.payload is None
    found = watermarker.detect(marked, SAMPLE_RATE_HZ)
    unsearched = SpreadSpectrumWatermarker(
        WatermarkKey("resync-test-key"), WatermarkOptions(time_scale_min=1.0, time_scale_max=1.0, pitch_scale_max=0.0)
    )
    assert unsearched._detector._search.hypotheses == 1
    plain = unsearched.detect(marked, SAMPLE_RATE_HZ)
    assert plain.payload == found.payload == PAYLOAD
    assert found.p_value == pytest.approx(min(1.0, search.hypotheses * plain.p_value))


def test_stretch_reads_at_a_multiple_of_the_rate():
    ramp = np.arange(1000, dtype=np.float32)
    np.testing.assert_allclose(stretch(ramp, 1.25)[:5], [0, 1.25, 2.5, 3.75, 5.0])
    np.testing.assert_allclose(stretch(ramp, 0.5, start=10, length=3), [5.0, 5.5, 6.0])
    assert stretch(ramp, 1.0) is not None and stretch(ramp, 2.0).size == 500


@needs_ffmpeg
@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_two_column_chip_runs_survive_tempo_changes(speech, factor):
    """Chips that keep their sign for two columns (32 ms) outlast WSOLA's ±10 ms grain shifts at tempo ±10 %,
    read by the tempo hypotheses and the early exit of the search."""
    runs = SpreadSpectrumWatermarker(WatermarkKey("resync-test-key"), WatermarkOptions(chip_run_columns=2))
    chips = runs.layout.chips
    assert np.array_equal(chips[0::2], chips[1::2])  # each run of two columns shares its sign
    assert np.allclose(chips.reshape(-1, runs.layout.span, chips.shape[1]).sum(axis=1), 0.0)  # host cancels
    result = runs.detect(tempo(runs.embed(speech, SAMPLE_RATE_HZ, PAYLOAD), factor), SAMPLE_RATE_HZ)
    assert result.payload == PAYLOAD and result.p_value < 1e-3


@pytest.mark.parametrize("run", [0, 3, 8])
def test_chip_runs_must_cancel_along_time(run):
    with pytest.raises(ValueError, match="chip_run_columns"):
        WatermarkOptions(chip_run_columns=run)


def test_frequency_scales_share_one_analysis(watermarker, marked):
    """Placements for several frequency scales at once equal those made one scale at a time."""
    detector, scales = watermarker._detector, [0.97, 1.0, 1.03]
    together = detector.placements_by_scale(marked, scales)
    for scale, found in zip(scales, together, strict=True):
        alone = detector.placements(marked, scale)
        assert [item.grid.start for item in found] == [item.grid.start for item in alone]
        np.testing.assert_allclose([item.best_score for item in found], [item.best_score for item in alone])
