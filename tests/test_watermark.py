"""Watermark: payload round trip, streaming equivalence, keys, silence, excerpts, splices, attacks, CLI.

Speech comes from espeak-ng, written to a temporary folder and read back like any recording.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import subprocess
import sys
from math import gcd
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from safety.watermark import (
    DEVELOPMENT_KEY,
    SAMPLE_RATE_HZ,
    WatermarkConfig,
    WatermarkError,
    WatermarkKey,
    create_watermarker,
    make_payload,
)
from safety.watermark.builtin import SpreadSpectrumWatermarker
from safety.watermark.spread import ecc
from safety.watermark.spread.localise import maximal_segments
from safety.watermark.spread.options import WatermarkOptions

PAYLOAD = make_payload(deployment_id=0x0A0B, session_id=0x1234)
KEY = WatermarkKey("test-key")
_TEXT = (
    "The committee will meet again next Thursday to discuss the budget, the new schedule and the results of the "
    "survey that was sent to every member of the staff last month."
)


def _espeak(folder: Path, name: str, text: str, voice: str = "en", words_per_minute: int = 160) -> np.ndarray:
    """Synthesise with espeak-ng into ``folder``/``name``.wav and return 16 kHz mono float32."""
    path = folder / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(path), text], check=True)
    samples, rate = sf.read(path, dtype="float32")
    common = gcd(rate, SAMPLE_RATE_HZ)
    return resample_poly(samples, SAMPLE_RATE_HZ // common, rate // common).astype(np.float32)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """About 6 s of English speech, trimmed to 5 s."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    return _espeak(tmp_path_factory.mktemp("speech"), "speech", _TEXT)[: 5 * SAMPLE_RATE_HZ]


@pytest.fixture(scope="module")
def other_speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """Unmarked speech from another voice, for splices and false-positive checks."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    text = "Der Zug nach Berlin fährt heute wegen Bauarbeiten eine halbe Stunde später ab, bitte achten Sie darauf."
    return _espeak(tmp_path_factory.mktemp("other"), "other", text, voice="de", words_per_minute=150)


@pytest.fixture(scope="module")
def watermarker() -> SpreadSpectrumWatermarker:
    return SpreadSpectrumWatermarker(KEY)


@pytest.fixture(scope="module")
def marked(watermarker: SpreadSpectrumWatermarker, speech: np.ndarray) -> np.ndarray:
    return watermarker.embed(speech, SAMPLE_RATE_HZ, PAYLOAD)


def _snr_db(reference: np.ndarray, marked: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / np.sum((marked - reference) ** 2)))


def _ffmpeg(samples: np.ndarray, *codec: str) -> np.ndarray:
    raw = ["-f", "f32le", "-ar", str(SAMPLE_RATE_HZ), "-ac", "1"]
    encoded = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", *raw, "-i", "pipe:0", *codec, "pipe:1"],
        input=samples.tobytes(), capture_output=True, check=True,
    ).stdout  # fmt: skip
    decoded = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", "pipe:0", *raw, "pipe:1"],
        input=encoded, capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(decoded, dtype=np.float32).copy()


def test_round_trip_recovers_payload(watermarker, speech, marked):
    assert marked.shape == speech.shape and marked.dtype == np.float32
    result = watermarker.detect(marked, SAMPLE_RATE_HZ)
    assert result.detected and result.payload == PAYLOAD
    assert result.p_value < 1e-3
    assert result.marked_s


def test_unmarked_speech_is_not_detected(watermarker, speech, other_speech):
    for audio in (speech, other_speech):
        result = watermarker.detect(audio, SAMPLE_RATE_HZ)
        assert not result.detected and result.payload is None
        assert not result.marked_s


def test_quality_snr_bound(speech, marked):
    assert _snr_db(speech, marked) >= 25.0


def test_energy_budget_holds_on_every_prefix(watermarker, speech, marked):
    """Unused budget carries forward, but never ahead of the signal: every prefix stays within max_mark_db."""
    bound_db = -watermarker.options.max_mark_db
    segment = watermarker.options.segment_columns * watermarker.options.column_samples
    for end in range(segment, speech.size, segment):
        if np.any(marked[:end] != speech[:end]):
            assert _snr_db(speech[:end], marked[:end]) >= bound_db


def test_streaming_equals_whole_signal(watermarker, speech, marked):
    rng = np.random.default_rng(0)
    stream = watermarker.stream(PAYLOAD)
    outputs, position = [], 0
    while position < speech.size:
        size = int(rng.integers(320, 32_000))  # 20 ms to 2 s
        outputs.append(stream.push(speech[position : position + size]))
        position += size
    outputs.append(stream.finish())
    np.testing.assert_allclose(np.concatenate(outputs), marked, atol=1e-6, rtol=0)


def test_streaming_delay_is_bounded(watermarker, speech):
    stream = watermarker.stream(PAYLOAD)
    chunk = SAMPLE_RATE_HZ // 50  # 20 ms
    emitted = 0
    for start in range(0, speech.size, chunk):
        emitted += stream.push(speech[start : start + chunk]).size
        assert start + chunk - emitted <= 0.3 * SAMPLE_RATE_HZ
    assert emitted + stream.finish().size == speech.size
    with pytest.raises(WatermarkError):
        stream.push(speech[:chunk])


def test_wrong_key_detects_nothing(speech, marked):
    result = SpreadSpectrumWatermarker(WatermarkKey("some-other-key")).detect(marked, SAMPLE_RATE_HZ)
    assert not result.detected and result.payload is None


def test_digital_silence_stays_exactly_zero(watermarker, speech):
    gap = np.zeros(SAMPLE_RATE_HZ, dtype=np.float32)
    audio = np.concatenate([speech[: 2 * SAMPLE_RATE_HZ], gap, speech[2 * SAMPLE_RATE_HZ :]])
    out = watermarker.embed(audio, SAMPLE_RATE_HZ, PAYLOAD)
    assert np.all(out[2 * SAMPLE_RATE_HZ : 3 * SAMPLE_RATE_HZ] == 0.0)
    assert np.all(watermarker.embed(np.zeros(SAMPLE_RATE_HZ, np.float32), SAMPLE_RATE_HZ, PAYLOAD) == 0.0)


def test_two_second_excerpt_carries_the_payload(watermarker, marked):
    excerpt = marked[int(1.3 * SAMPLE_RATE_HZ) : int(3.3 * SAMPLE_RATE_HZ)]
    result = watermarker.detect(excerpt, SAMPLE_RATE_HZ)
    assert result.detected and result.payload == PAYLOAD


def test_splice_is_localised(watermarker, marked, other_speech):
    before, after = other_speech[: 3 * SAMPLE_RATE_HZ], other_speech[-3 * SAMPLE_RATE_HZ :]
    result = watermarker.detect(np.concatenate([before, marked, after]), SAMPLE_RATE_HZ)
    assert result.detected and result.payload == PAYLOAD
    ranges = result.marked_s
    assert abs(ranges[0][0] - 3.0) <= 0.5 and abs(ranges[-1][1] - 8.0) <= 0.5


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_survives_mp3_64k(watermarker, marked):
    attacked = _ffmpeg(marked, "-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3")
    assert watermarker.detect(attacked, SAMPLE_RATE_HZ).payload == PAYLOAD


def test_survives_resampling_through_8_khz(watermarker, marked):
    narrow = resample_poly(resample_poly(marked, 1, 2), 2, 1).astype(np.float32)
    assert watermarker.detect(narrow, SAMPLE_RATE_HZ).payload == PAYLOAD


def test_other_sample_rates(watermarker, speech):
    audio = resample_poly(speech, 441, 160).astype(np.float32)  # 44.1 kHz
    marked = watermarker.embed(audio, 44_100, PAYLOAD)
    assert marked.shape == audio.shape
    assert watermarker.detect(marked, 44_100).payload == PAYLOAD


def test_key_and_config_hide_the_secret(caplog):
    with caplog.at_level(logging.WARNING):
        key = WatermarkKey.from_secret("secret-from-settings")
    assert not caplog.records
    assert "secret" not in repr(key) and "secret" not in str(key)
    assert key.seed("x") == WatermarkKey("secret-from-settings").seed("x")
    assert "secret" not in repr(WatermarkConfig(key_secret="secret-from-settings"))
    with caplog.at_level(logging.WARNING):
        development = WatermarkKey.from_secret(None)
    assert any("development key" in record.getMessage() for record in caplog.records)
    assert DEVELOPMENT_KEY not in caplog.text
    assert development.seed("x") == WatermarkKey(DEVELOPMENT_KEY).seed("x")


def test_config_chooses_the_key(speech):
    configured = create_watermarker(WatermarkConfig(key_secret="test-key"))
    assert configured.period_samples == 30_720  # 1.92 s at 16 kHz
    marked = configured.embed(speech, SAMPLE_RATE_HZ, PAYLOAD)
    assert SpreadSpectrumWatermarker(KEY).detect(marked, SAMPLE_RATE_HZ).payload == PAYLOAD
    assert create_watermarker().detect(marked, SAMPLE_RATE_HZ).payload is None  # the development key differs


def test_long_keys_stay_distinct():
    assert WatermarkKey("a" * 100).seed("x") != WatermarkKey("a" * 64 + "b" * 36).seed("x")
    assert WatermarkKey("k").seed("layout") != WatermarkKey("k").seed("other")


def test_invalid_input_and_options():
    with pytest.raises(ValueError):
        make_payload(1 << 16, 0)
    with pytest.raises(ValueError):
        ecc.encode_payload(1 << 32)
    with pytest.raises(ValueError):
        WatermarkOptions(band_low_hz=4000.0, band_high_hz=3000.0)
    with pytest.raises(ValueError):
        WatermarkOptions(pilot_symbols=13)
    with pytest.raises(WatermarkError):
        SpreadSpectrumWatermarker(KEY).embed(np.zeros((2, 100), np.float32), SAMPLE_RATE_HZ, 0)
    with pytest.raises(ValueError):
        WatermarkConfig(backend="nonexistent")
    with pytest.raises(ValueError):
        WatermarkConfig(key_secret="")
    with pytest.raises(ValueError):
        WatermarkConfig(audiowmark_strength=0.0)


def test_error_correction_and_crc():
    rng = np.random.default_rng(1)
    codeword = ecc.encode_payload(PAYLOAD)
    assert codeword.shape == (ecc.CODED_BITS,)
    noisy = codeword + rng.normal(0.0, 0.6, codeword.size)
    assert ecc.decode_payload(noisy)[0] == PAYLOAD
    noise = ecc.decode_payloads(rng.normal(0.0, 1.0, (200, ecc.CODED_BITS)))
    assert all(payload is None for payload, _ in noise)  # the CRC passes about 1 in 65,536 guesses
    corrupted = codeword.copy()
    corrupted[:20] *= -1  # a burst beyond the code's reach
    decoded, _ = ecc.decode_payload(corrupted)
    assert decoded != PAYLOAD


def test_list_decoding_reads_payloads_the_best_path_misses():
    rng = np.random.default_rng(2)
    noisy = ecc.encode_payload(PAYLOAD) + rng.normal(0.0, 1.1, (100, ecc.CODED_BITS))
    single = sum(payload == PAYLOAD for payload, _ in ecc.decode_payloads(noisy))
    listed = sum(payload == PAYLOAD for payload, _ in ecc.decode_payloads(noisy, 16))
    assert listed >= single + 10, (single, listed)
    # Every path tried is a chance for noise to pass the CRC (16 x 300 / 65,536 = 0.07 expected here).
    noise = ecc.decode_payloads(rng.normal(0.0, 1.0, (300, ecc.CODED_BITS)), 16)
    assert sum(payload is not None for payload, _ in noise) <= 1


def test_maximal_segments_find_each_stretch_above_the_threshold():
    scores = np.array([-1.0, 2, 2, -1, 3, -5, -5, 4, -1, -9, 1.5])
    assert maximal_segments(scores, 3.0) == [(1, 5), (7, 8)]
    assert maximal_segments(scores, 7.0) == []
    assert maximal_segments(-np.ones(5), 0.5) == []


def test_cli_end_to_end(tmp_path, marked, speech):
    marked_path, clean_path = tmp_path / "marked.wav", tmp_path / "clean.flac"
    sf.write(marked_path, marked, SAMPLE_RATE_HZ, subtype="PCM_16")
    sf.write(clean_path, speech, SAMPLE_RATE_HZ)
    proc = subprocess.run(
        [sys.executable, "-m", "safety.watermark", "detect", "--key", "test-key", str(marked_path), str(clean_path)],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert f"payload 0x{PAYLOAD:08x}" in lines[0]
    start_s, end_s = map(float, re.search(r"marked (\d+\.\d+)-(\d+\.\d+) s$", lines[0]).groups())
    assert start_s <= 0.5 and abs(end_s - marked.size / SAMPLE_RATE_HZ) <= 0.5  # the whole file is marked
    assert "no watermark" in lines[1]
    assert "test-key" not in proc.stdout + proc.stderr
    assert "development key" not in proc.stderr


@pytest.mark.skipif(shutil.which("audiowmark") is None, reason="audiowmark binary is not on PATH")
def test_audiowmark_backend_round_trip(speech):
    backend = create_watermarker(WatermarkConfig(backend="audiowmark", audiowmark_detect_speed=True))
    long_speech = np.tile(speech, 6)  # audiowmark needs tens of seconds
    result = backend.detect(backend.embed(long_speech, SAMPLE_RATE_HZ, PAYLOAD), SAMPLE_RATE_HZ)
    assert result.detected and result.payload == PAYLOAD
    assert math.isnan(result.p_value)  # audiowmark gives no p-value, and says so


def _audioseal_available() -> bool:
    try:
        import audioseal  # noqa: F401
    except ImportError:
        return False
    return all(Path(os.environ.get(name, "/nonexistent")).is_file()
               for name in ("PARLEY_AUDIOSEAL_GENERATOR", "PARLEY_AUDIOSEAL_DETECTOR"))  # fmt: skip


@pytest.mark.skipif(not _audioseal_available(), reason="audioseal package or its local checkpoints not available")
def test_audioseal_backend_round_trip(speech):
    backend = create_watermarker(
        WatermarkConfig(
            backend="audioseal",
            audioseal_generator=Path(os.environ["PARLEY_AUDIOSEAL_GENERATOR"]),
            audioseal_detector=Path(os.environ["PARLEY_AUDIOSEAL_DETECTOR"]),
        )
    )
    result = backend.detect(backend.embed(speech, SAMPLE_RATE_HZ, PAYLOAD), SAMPLE_RATE_HZ)
    assert result.detected and result.payload == PAYLOAD & 0xFFFF


def test_chips_cancel_static_host_structure(watermarker):
    """Every symbol's chips sum to zero along time in each band: a spectral pattern that holds over a symbol's
    columns (such as voice harmonics) adds nothing to its correlation; they alternate along frequency; and they
    match the per-block form the detector correlates with (sign x (-1) ** (column offset + band))."""
    layout = watermarker.layout
    for symbol in range(layout.symbol_rows.size):
        columns, bands = np.nonzero(layout.symbols == symbol)
        chips = np.zeros((layout.span, watermarker.options.band_count))
        chips[columns - layout.symbol_rows[symbol], bands] = layout.chips[columns, bands]
        assert np.allclose(chips.sum(axis=0), 0.0)
        used = np.flatnonzero(chips[0])
        assert used.size >= 2 and np.all(np.diff(used) == 1)
        assert np.all(chips[:, used[1:]] == -chips[:, used[:-1]])
        offset, band = np.indices(chips.shape)
        expected = layout.symbol_signs[symbol] * np.where((offset + band) % 2, -1.0, 1.0)
        assert np.array_equal(chips[:, used], expected[:, used])
        assert layout.block_starts[layout.symbol_blocks[symbol]] == used[0]
