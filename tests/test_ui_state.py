"""The app's server-side state without a browser: background model loading, fallback, per-tab live state."""

import dataclasses

import numpy as np
import pytest

from compose.settings import Settings, WatermarkSettings
from engine.audio import SAMPLE_RATE_HZ
from engine.options import EngineOptions
from engine.streaming import StreamingSession
from engine.vad import StreamingVad
from safety.marking import MarkedTimeline
from ui.live import LiveRegistry, LiveTranslation
from ui.runtime import ModelNotReady, ModelRuntime, ModelState


def test_unloadable_model_fails_in_plain_words_and_tiny_takes_over(tmp_path, monkeypatch, tiny_options):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    runtime = ModelRuntime(
        Settings(engine=EngineOptions(cache_dir=tiny_options.cache_dir, device="cpu", hub_offline=True))
    )
    with pytest.raises(ModelNotReady):
        runtime.pipeline()
    runtime.start()
    status = runtime.wait(60)
    assert status.state is ModelState.FAILED and "cannot be reached" in status.message
    with pytest.raises(ModelNotReady, match="could not be loaded"):
        runtime.pipeline()
    runtime.use_tiny()
    status = runtime.wait(60)
    assert status.ready and "meaningless" in status.message
    assert runtime.pipeline().loaded.is_tiny


def live(translator, vad_model) -> LiveTranslation:
    return LiveTranslation(StreamingSession(translator, StreamingVad.for_new_stream(vad_model), "jpn", task="s2st"))


def test_speech_is_handed_out_one_piece_after_another(translator, vad_model, hello_audio):
    state = live(translator, vad_model)
    audio = np.concatenate([hello_audio, np.zeros(SAMPLE_RATE_HZ, np.float32), hello_audio])
    handed, clock = [], 0.0
    for i in range(0, audio.size, 8000):
        clock += 0.5
        piece = state.push(audio[i : i + 8000], SAMPLE_RATE_HZ, now=clock)
        if piece is not None:
            assert not handed or clock >= handed[-1][0] + handed[-1][1].size / SAMPLE_RATE_HZ  # never cut off
            handed.append((clock, piece))
    rest = state.finish(now=clock + 100)
    pieces = [p for _, p in handed] + ([rest] if rest is not None else [])
    total = sum(p.size for p in pieces)
    assert total == state.speech.speech_samples > 0  # every sample of speech is played exactly once
    assert state.finish(now=clock + 200) is None


def test_downloads_and_timeline(translator, vad_model, hello_audio, tmp_path):
    state = live(translator, vad_model)
    state.push(np.concatenate([hello_audio, np.zeros(SAMPLE_RATE_HZ, np.float32)]), SAMPLE_RATE_HZ, now=0.0)
    state.finish(now=1.0)
    names = {p.name for p in state.write_downloads(tmp_path)}
    assert {"translation.txt", "translation.srt", "translation.vtt", "translation.wav"} <= names
    placed = MarkedTimeline(lambda audio, at_sample: audio)
    placed.add(1.0, np.ones(8000, np.float32))
    placed.add(1.2, np.ones(8000, np.float32))
    timeline = placed.audio()
    assert timeline.size == SAMPLE_RATE_HZ + 16000  # the second piece waits for the first instead of overlapping
    assert not timeline[:SAMPLE_RATE_HZ].any()


def test_registry_keeps_one_state_per_tab_and_drops_it_on_unload(translator, vad_model):
    registry = LiveRegistry()
    a = registry.get("tab-a", lambda: live(translator, vad_model))
    assert registry.get("tab-a", lambda: pytest.fail("must reuse")) is a
    registry.get("tab-b", lambda: live(translator, vad_model))
    assert len(registry) == 2
    registry.drop("tab-a")
    assert len(registry) == 1 and registry.peek("tab-a") is None
    a.finished = True  # a finished stream is replaced by a fresh one on the next chunk
    registry.get("tab-b", lambda: live(translator, vad_model)).finished = True
    assert not registry.get("tab-b", lambda: live(translator, vad_model)).finished


def test_every_synthetic_sample_is_marked_before_it_leaves(translator, vad_model, hello_audio, tiny_settings, tmp_path):
    import soundfile as sf

    from engine.tasks import Task
    from ui.app import SPEECH_AND_TEXT, ParleyApp

    runtime = ModelRuntime(dataclasses.replace(tiny_settings, watermark=WatermarkSettings(deployment_id=3)))
    runtime.start()
    runtime.wait(60)
    app = ParleyApp(runtime, tmp_path)

    class Request:
        session_hash = "tab-1"

    text, wav, safety = app.translate_text("Good morning.", "eng", "fra", SPEECH_AND_TEXT, Request())
    assert safety.startswith("**Safety")
    assert text
    raw = translator.translate(["Good morning."], Task.T2ST, "fra", src_lang="eng")[0].waveform
    expected = app.marker(Request())(raw)
    saved, _ = sf.read(wav, dtype="float32")
    assert not np.allclose(saved, np.clip(raw, -1, 1), atol=1e-3)  # changed by the mark …
    np.testing.assert_allclose(saved, np.clip(expected, -1, 1), atol=2e-4)  # … exactly as the marker marks it

    seen = []
    state = LiveTranslation(
        StreamingSession(translator, StreamingVad.for_new_stream(vad_model), "jpn", task="s2st"),
        mark=lambda audio, at_sample: seen.append((audio.size, at_sample)) or audio * 0.5,
    )
    played = state.push(np.concatenate([hello_audio, np.zeros(SAMPLE_RATE_HZ, np.float32)]), SAMPLE_RATE_HZ, now=0.0)
    rest = state.finish(now=100.0)
    played = [p for p in (played, rest) if p is not None]
    assert played and state.speech.speech_samples == sum(p.size for p in played)
    # Every piece went through the marker twice: for the saved file and, joined as handed out, for the player,
    # each at its position on that output's own timeline (the player's pieces follow each other).
    assert sum(size for size, _ in seen) == 2 * state.speech.speech_samples
    starts = np.cumsum([0] + [p.size for p in played[:-1]])
    assert all((p.size, int(start)) in seen for p, start in zip(played, starts, strict=True))
