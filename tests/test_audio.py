"""Audio input: every common format, rate and channel layout becomes validated 16 kHz mono float32."""

import subprocess

import numpy as np
import pytest
import soundfile as sf

from engine.audio import SAMPLE_RATE_HZ, AudioError, load_audio, prepare


def ffmpeg(src, dst, *args):
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), *args, str(dst)], check=True)
    return dst


def close_in_length(audio, reference, tolerance_s=0.08):
    return abs(audio.shape[0] - reference.shape[0]) <= tolerance_s * SAMPLE_RATE_HZ


@pytest.mark.parametrize(
    ("suffix", "args"),
    [
        ("wav", []),
        ("flac", []),
        ("mp3", ["-b:a", "64k"]),
        ("ogg", ["-c:a", "libvorbis"]),
        ("opus", ["-c:a", "libopus", "-b:a", "32k"]),
        ("m4a", ["-c:a", "aac"]),
        ("webm", ["-c:a", "libopus"]),
    ],
)
def test_formats(hello_wav, hello_audio, tmp_path, suffix, args):
    path = ffmpeg(hello_wav, tmp_path / f"hello.{suffix}", *args)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert close_in_length(audio, hello_audio)
    assert np.max(np.abs(audio)) > 0.05


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 44100, 48000, 96000])
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_rates_and_channels(hello_wav, hello_audio, tmp_path, rate, channels):
    path = ffmpeg(hello_wav, tmp_path / "x.wav", "-ar", str(rate), "-ac", str(channels))
    audio = load_audio(path)
    assert close_in_length(audio, hello_audio)
    if rate >= 16000:  # no band was lost: the waveform matches the 16 kHz original closely
        n = min(audio.shape[0], hello_audio.shape[0])
        corr = np.corrcoef(audio[:n], hello_audio[:n])[0, 1]
        assert corr > 0.9


def test_bytes_and_int16_arrays(hello_wav, hello_audio):
    assert np.allclose(load_audio(hello_wav.read_bytes()), hello_audio, atol=1e-4)
    pcm, rate = sf.read(hello_wav, dtype="int16")
    from_int = prepare(np.stack([pcm, pcm], axis=1), rate)  # browser-style int16 stereo
    assert np.allclose(from_int, hello_audio, atol=1e-3)


def test_uint8_pcm(hello_wav, hello_audio, tmp_path):
    path = ffmpeg(hello_wav, tmp_path / "u8.wav", "-c:a", "pcm_u8")
    audio = load_audio(path)
    n = min(audio.shape[0], hello_audio.shape[0])
    assert abs(float(np.mean(audio))) < 0.01  # centred, not offset by +0.5
    assert np.corrcoef(audio[:n], hello_audio[:n])[0, 1] > 0.95


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"RIFF\x00\x00garbage" * 50), "could not be read"),
        (lambda p: p.write_text("this is not audio at all\n" * 100), "could not be read"),
        (lambda p: sf.write(p, np.zeros(16000 * 3, np.float32), 16000), "silent"),
        (lambda p: sf.write(p, np.zeros(400, np.float32) + 0.1, 16000), "too short"),
    ],
    ids=["empty", "corrupt", "not-audio", "silence", "too-short"],
)
def test_bad_files(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=message):
        load_audio(path)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "nope.wav")


def test_nan_and_inf_rejected(hello_audio):
    for bad in (np.nan, np.inf):
        audio = hello_audio.copy()
        audio[100] = bad
        with pytest.raises(AudioError, match="NaN or infinity"):
            prepare(audio, SAMPLE_RATE_HZ)


def test_limits(hello_wav, hello_audio):
    with pytest.raises(AudioError, match="limit is"):
        prepare(hello_audio, SAMPLE_RATE_HZ, max_duration_s=1.0)
    with pytest.raises(AudioError, match="limit is"):
        load_audio(hello_wav, max_file_bytes=1000)


def test_bad_shapes_and_rates(hello_audio):
    with pytest.raises(AudioError, match="dimensional"):
        prepare(np.zeros((2, 2, 2), np.float32), SAMPLE_RATE_HZ)
    with pytest.raises(AudioError, match="sample rate"):
        prepare(hello_audio, 0)


def test_hours_hidden_in_a_small_file_are_refused_before_decoding(tmp_path):
    """A few hundred KB of FLAC can hold hours of silence: the limit is read from the header, nothing is decoded."""
    import resource
    import time

    path = tmp_path / "two-hours.flac"
    rate = 8000
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, format="FLAC") as out:
        block = np.zeros(rate * 60, dtype=np.float32)
        for _ in range(130):  # 2 h 10 min
            out.write(block)
    assert path.stat().st_size < 2 * 2**20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(AudioError, match=r"130\.0 minutes long; the limit is 120 minutes"):
        load_audio(path, max_duration_s=7200)
    assert time.perf_counter() - started < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KB: nothing was decoded


def test_formats_decoded_by_ffmpeg_stop_at_the_limit(tmp_path):
    path = tmp_path / "long.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=60", "-c:a", "aac",
                    str(path)], check=True)  # fmt: skip
    with pytest.raises(AudioError, match="longer than that; the limit is 0 minutes"):
        load_audio(path, max_duration_s=20)
    assert load_audio(path, max_duration_s=120).shape[0] == pytest.approx(60 * 16000, rel=0.01)


def test_too_many_channels_are_refused_from_the_header(tmp_path):
    path = tmp_path / "many.wav"
    sf.write(path, np.zeros((1000, 64), dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="64 channels"):
        load_audio(path)
