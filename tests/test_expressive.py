"""Expressive stage: pauses, pace, pitch and loudness carried over on real espeak-ng speech; robustness on silence,
noise and tiny inputs; vocoder voice profiles on the tiny model; both translation paths apply the stage."""

import dataclasses
import json

import numpy as np
import pytest

from engine.audio import SAMPLE_RATE_HZ, load_audio
from engine.expressivity_metrics import (
    expressivity,
    f0_median_error_st,
    loudness_error_lu,
    pause_alignment,
    speech_rate_correlation,
)
from engine.file_translation import translate_recording
from engine.languages import all_languages
from engine.prosody import ExpressiveOptions, ExpressiveStage
from engine.prosody.analysis import (
    PitchProfile,
    count_syllables,
    frame_levels_db,
    loudness_lufs,
    pause_layout,
    track_f0,
)
from engine.prosody.languages import read_duration_factors, read_syllable_rates
from engine.streaming import SpeechChunk, StreamingSession
from engine.tasks import Task
from engine.vad import Segmenter, StreamingVad
from engine.voices import PROFILE_SENTENCE, VoiceMatcher, VoiceProfile
from tests.conftest import espeak, recording

TGT = "spa"
PHRASES = ("Welcome to the weekly meeting", "of the translation team", "on Thursday morning")


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE_HZ), np.float32)


@pytest.fixture(scope="module")
def say(speech_dir):
    """espeak-ng speech at 16 kHz, peak-normalised to ``level``; cached per setting."""
    cache = {}

    def render(text: str, voice: str = "en", speed_wpm: int = 160, pitch: int = 50, level: float = 0.5):
        key = (text, voice, speed_wpm, pitch)
        if key not in cache:
            path = speech_dir / f"expr{len(cache)}.wav"
            cache[key] = load_audio(espeak(text, path, voice=voice, speed_wpm=speed_wpm, pitch=pitch))
        audio = cache[key]
        return (audio / np.abs(audio).max() * level).astype(np.float32)

    return render


@pytest.fixture(scope="module")
def neutral(say):
    """The "translation": another sentence, Spanish voice, default speed and pitch, no pauses."""
    return say("Bienvenidos a la reunión semanal del equipo de traducción el jueves", voice="es", speed_wpm=175)


def source_with_pauses(say, pauses_s=(0.6, 0.35), **voice) -> np.ndarray:
    pieces = [silence(0.2)]
    for phrase, pause in zip(PHRASES, (*pauses_s, 0.0), strict=True):
        pieces += [say(phrase, **voice), silence(pause)]
    return np.concatenate([*pieces, silence(0.2)])


@pytest.fixture(scope="module")
def stage():
    return ExpressiveStage(ExpressiveOptions())


def test_pauses_reappear_at_their_relative_positions(stage, say, neutral):
    source = source_with_pauses(say)
    out = stage.apply(source, neutral, TGT)
    theirs, ours = pause_layout(source, 0.2), pause_layout(out, 0.2)
    assert len(pause_layout(neutral, 0.2).pauses) == 0
    assert len(ours.pauses) == len(theirs.pauses) == 2
    for p, q in zip(theirs.relative_positions(), ours.relative_positions(), strict=True):
        assert abs(p - q) < 0.08
    for (a0, a1), (b0, b1) in zip(theirs.pauses, ours.pauses, strict=True):
        assert abs((a1 - a0) - (b1 - b0)) <= 1  # hops of 10 ms: the quiet around each cut counts as pause
    assert pause_alignment(source, out) > 0.9 > pause_alignment(source, neutral)


def test_output_duration_tracks_source_duration(stage, say, neutral):
    slow = source_with_pauses(say, speed_wpm=115)
    fast = source_with_pauses(say, speed_wpm=235)
    slow_out, fast_out = stage.apply(slow, neutral, TGT), stage.apply(fast, neutral, TGT)
    assert slow_out.shape[0] > 1.3 * fast_out.shape[0]
    for source, out in ((slow, slow_out), (fast, fast_out)):
        # Spanish says it in more syllables but faster; the pace follows the syllable rate, so the length is near.
        assert 0.65 < out.shape[0] / source.shape[0] < 1.35
    # the speech itself is only stretched within the speed bounds
    speech_s = pause_layout(neutral, 0.2).speech_hops / 100
    for out in (slow_out, fast_out):
        stretch = pause_layout(out, 0.2).speech_hops / 100 / speech_s
        assert 1 / stage.options.max_speed - 0.05 < stretch < 1 / stage.options.min_speed + 0.05
    rate = count_syllables(slow_out) / pause_layout(slow_out, 0.2).speech_hops
    assert rate < count_syllables(fast_out) / pause_layout(fast_out, 0.2).speech_hops


@pytest.mark.parametrize(("pitch", "direction"), [(95, 1), (0, -1)])
def test_pitch_moves_toward_the_speaker(stage, say, neutral, pitch, direction):
    source = source_with_pauses(say, pitch=pitch, voice="en+f3" if direction > 0 else "en")
    out = stage.apply(source, neutral, TGT)
    before, after = PitchProfile.of(track_f0(neutral)), PitchProfile.of(track_f0(out))
    speaker = PitchProfile.of(track_f0(source))
    moved = 12 * np.log2(after.median_hz / before.median_hz)
    assert direction * moved > 0.5
    assert abs(moved) <= stage.options.max_shift_st + 0.5  # bounded
    assert f0_median_error_st(source, out) < f0_median_error_st(source, neutral)
    assert speaker.median_hz is not None


def test_loudness_follows_the_source_without_clipping(stage, say, neutral):
    quiet = source_with_pauses(say) * 0.05
    out = stage.apply(quiet, neutral, TGT)
    assert abs(loudness_lufs(out) - loudness_lufs(quiet)) < 0.5
    loud = np.clip(source_with_pauses(say) * 4, -1, 1)
    out = stage.apply(loud, neutral, TGT)
    assert np.abs(out).max() <= stage.options.peak_ceiling + 1e-6
    assert loudness_error_lu(loud, out) < loudness_error_lu(loud, neutral)


def test_silence_in_gives_silence_out(stage, neutral, say):
    assert not np.any(stage.apply(say(PHRASES[0]), silence(1.0), TGT))
    assert np.array_equal(stage.apply(silence(1.0), neutral, TGT), neutral)  # nothing to follow: left as it is


@pytest.mark.parametrize("length_s", [0.0, 0.005, 0.03, 0.1, 0.25])
def test_very_short_segments_and_noise_are_safe(stage, say, neutral, length_s):
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(round(1.5 * SAMPLE_RATE_HZ)) * 0.3).astype(np.float32)
    short = neutral[: round(length_s * SAMPLE_RATE_HZ)]
    clipped = np.clip(neutral * 3, -1, 1)
    for source, translated in ((say(PHRASES[0]), short), (short, neutral), (noise, neutral), (noise, noise),
                               (say(PHRASES[1]), clipped), (short, short)):  # fmt: skip
        out = stage.apply(source, translated, TGT)
        assert out.dtype == np.float32 and np.isfinite(out).all()
        assert np.abs(out).max(initial=0.0) <= max(stage.options.peak_ceiling, np.abs(translated).max(initial=0.0))


def test_unvoiced_sound_keeps_its_spectrum(stage, say):
    """Pitch moves only voiced speech: noise is re-timed and re-levelled, never resampled up or down."""
    rng = np.random.default_rng(1)
    hiss = np.convolve(rng.standard_normal(SAMPLE_RATE_HZ), [1.0, -0.9])[:SAMPLE_RATE_HZ].astype(np.float32) * 0.2
    out = stage.apply(source_with_pauses(say, voice="en+f3", pitch=95), hiss, TGT)

    def centroid_hz(x):
        power = np.abs(np.fft.rfft(x)) ** 2
        return float(np.sum(np.fft.rfftfreq(x.shape[0], 1 / SAMPLE_RATE_HZ) * power) / np.sum(power))

    assert centroid_hz(out) == pytest.approx(centroid_hz(hiss), rel=0.05)


def test_disabled_stage_leaves_speech_untouched(neutral, say):
    off = ExpressiveStage(ExpressiveOptions(enabled=False))
    assert np.array_equal(off.apply(source_with_pauses(say), neutral, TGT), neutral)
    assert off.speaker_for(neutral) is None


def test_options_are_validated():
    for bad in (dict(min_speed=1.2), dict(max_shift_st=-1), dict(pitch_follow=2), dict(peak_ceiling=1.5)):
        with pytest.raises(ValueError):
            ExpressiveOptions(**bad)


def test_every_speech_output_language_has_a_duration_factor(stage):
    factors = read_duration_factors(ExpressiveOptions().duration_factors_tsv)
    assert {lang.code for lang in all_languages() if lang.speech_output} == set(factors)
    assert stage.duration_factor("spa", "eng") == pytest.approx(factors["spa"])
    assert stage.duration_factor("xxx") == 1.0


def test_syllable_rates_scale_the_pace_target(stage):
    rates = read_syllable_rates(ExpressiveOptions().duration_factors_tsv)
    assert rates["eng"] == 1.0 and set(rates) <= {lang.code for lang in all_languages() if lang.speech_output}
    assert rates["spa"] > 1.1  # Spanish is spoken with more syllables per second
    assert stage.syllable_rate_ratio("spa", "eng") == pytest.approx(rates["spa"])
    assert stage.syllable_rate_ratio("eng", "spa") == pytest.approx(1 / rates["spa"])
    # Every language with an espeak-ng voice has a figure (published or estimated); Tagalog has neither.
    speech_out = {lang.code for lang in all_languages() if lang.speech_output}
    assert set(rates) == speech_out - {"tgl"} and len(set(rates.values())) > 10
    assert stage.syllable_rate_ratio("xxx") == stage.syllable_rate_ratio("tgl", "eng") == 1.0  # no measurement


def test_output_syllable_rate_follows_the_speaker(stage, say, neutral):
    """Within the speed bounds the output's syllable rate is the speaker's × the languages' syllable-rate ratio."""
    ratio = stage.syllable_rate_ratio(TGT, "eng")
    for speed_wpm in (150, 190):
        source = source_with_pauses(say, speed_wpm=speed_wpm)
        out = stage.apply(source, neutral, TGT, "eng")
        theirs = count_syllables(source) / pause_layout(source, 0.2).speech_hops
        ours = count_syllables(out) / pause_layout(out, 0.2).speech_hops
        assert ours == pytest.approx(theirs * ratio, rel=0.12)


def test_slowing_down_does_not_turn_short_gaps_into_pauses(stage, say, neutral):
    """A translation gap just under min_pause_s would last over it once slowed; the output's pauses are the source's
    only."""
    levels = frame_levels_db(neutral)
    third = levels.shape[0] // 3
    cut = (third + int(np.argmax(levels[third : 2 * third]))) * SAMPLE_RATE_HZ // 100  # inside a loud vowel
    gapped = np.concatenate([neutral[:cut], silence(0.17), neutral[cut:]])
    assert not pause_layout(gapped, 0.2).pauses
    slow = np.concatenate([silence(0.2), say(" ".join(PHRASES), speed_wpm=100), silence(0.2)])
    assert not pause_layout(slow, 0.2).pauses
    assert not pause_layout(stage.apply(slow, gapped, TGT), 0.2).pauses


def test_metrics_on_known_cases(say, neutral):
    source = source_with_pauses(say)
    assert pause_alignment(source, source) == pytest.approx(1.0)
    assert pause_alignment(neutral, neutral) == 1.0  # no pauses on either side
    assert f0_median_error_st(source, source) == 0.0
    assert loudness_error_lu(source, source * 0.5) == pytest.approx(20 * np.log10(2), abs=0.05)
    speeds = [source_with_pauses(say, speed_wpm=s) for s in (110, 160, 230)]
    assert speech_rate_correlation(speeds, speeds) == pytest.approx(1.0)
    figures = expressivity(speeds, [neutral] * 3)
    assert figures.rate_correlation == 0.0  # the same neutral rendering every time: no rate is followed
    assert figures.pause_alignment == 0.0 and figures.loudness_error_lu >= 0


def test_voice_profiles_are_measured_once_at_start_up_and_cached(translator, tmp_path, monkeypatch, say):
    matcher = VoiceMatcher(translator, ExpressiveOptions(cache_dir=tmp_path))
    assert matcher.nearest(say(PHRASES[0])) is None and not matcher.prepared  # matching never measures
    assert not matcher.cache_path.exists()
    profiles = matcher.prepare()
    assert [p.speaker_id for p in profiles] == list(range(translator.loaded.num_speakers)) == list(range(8))
    cached = json.loads(matcher.cache_path.read_text(encoding="utf-8"))
    assert cached["model"] == translator.loaded.name and len(cached["voices"]) == 8

    def no_synthesis(*args, **kwargs):
        raise AssertionError("profiles must come from the cache")

    monkeypatch.setattr(translator, "synthesize", no_synthesis)
    assert matcher.nearest(say(PHRASES[0])) in (None, *range(8))  # after start-up, matching needs no vocoder
    assert VoiceMatcher(translator, ExpressiveOptions(cache_dir=tmp_path)).prepare() == profiles
    # a cache measured on other weights under the same model name (e.g. an older tiny model) is measured again
    matcher.cache_path.write_text(json.dumps(cached | {"source": "/elsewhere"}), encoding="utf-8")
    with pytest.raises(AssertionError, match="from the cache"):
        VoiceMatcher(translator, ExpressiveOptions(cache_dir=tmp_path)).prepare()


def test_nearest_voice_follows_the_speakers_pitch(translator, tmp_path, say):
    matcher = VoiceMatcher(translator, ExpressiveOptions(cache_dir=tmp_path))
    voices = [VoiceProfile(i, hz, 4.0) for i, hz in enumerate([100, 130, 180, 240, None, 300, 90, 150])]
    cache = {
        "model": translator.loaded.name,
        "source": str(translator.loaded.model.name_or_path),
        "sentence": PROFILE_SENTENCE,
        "voices": [dataclasses.asdict(v) for v in voices],
    }
    matcher.cache_path.parent.mkdir(parents=True)
    matcher.cache_path.write_text(json.dumps(cache), encoding="utf-8")
    matcher.prepare()
    low = matcher.nearest(say(PHRASES[0], voice="en", pitch=20))
    high = matcher.nearest(say(PHRASES[0], voice="en+f3", pitch=90))
    assert voices[low].median_hz < voices[high].median_hz
    assert matcher.nearest(silence(0.5)) is None


class SpyStage(ExpressiveStage):
    """The real stage, recording what it was given."""

    def __init__(self) -> None:
        super().__init__(ExpressiveOptions())
        self.calls: list[tuple[int, int]] = []

    def speaker_for(self, source: np.ndarray, timbre: bool = True) -> int | None:
        return 3

    def apply(self, source, translated, tgt_lang, src_lang=None, live=False):
        out = super().apply(source, translated, tgt_lang, src_lang, live)
        self.calls.append((source.shape[0], out.shape[0]))
        return out


@pytest.fixture(scope="module")
def two_utterances(say):
    audio, spans = recording([source_with_pauses(say, pauses_s=(0.5, 0.0)), say(PHRASES[2], pitch=80)], [1.0, 0.5])
    return audio, spans


def test_file_translation_applies_the_stage(translator, vad_model, two_utterances):
    audio, _ = two_utterances
    spy = SpyStage()
    result = translate_recording(translator, Segmenter(vad_model), audio, Task.S2ST, TGT, expressive=spy)
    assert len(spy.calls) == len(result.segments) >= 2
    for (source_n, out_n), seg in zip(spy.calls, result.segments, strict=True):
        assert source_n == seg.source.end - seg.source.start and out_n == seg.audio.shape[0]
    neutral = translate_recording(translator, Segmenter(vad_model), audio, Task.S2ST, TGT)
    assert not np.array_equal(neutral.audio, result.audio)


def test_streaming_applies_the_stage_to_each_chunk(translator, vad_model, two_utterances):
    audio, _ = two_utterances
    spy = SpyStage()
    session = StreamingSession(
        translator, StreamingVad.for_new_stream(vad_model), TGT, task="s2st", preset="low", expressive=spy
    )
    events = []
    for i in range(0, audio.shape[0], SAMPLE_RATE_HZ // 2):
        events += session.push(audio[i : i + SAMPLE_RATE_HZ // 2], SAMPLE_RATE_HZ)
    events += session.finish()
    chunks = [e for e in events if isinstance(e, SpeechChunk)]
    assert chunks and len(spy.calls) == len(chunks)
    assert [c.audio.shape[0] for c in chunks] == [out for _, out in spy.calls]
    assert all(np.isfinite(c.audio).all() and c.audio.dtype == np.float32 for c in chunks)
