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


def test_unloadable_model_fails_in_plain_words_and_tiny_takes_over(tmp_path, monkeypatch, tiny_options, caplog):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    runtime = ModelRuntime(
        Settings(engine=EngineOptions(cache_dir=tiny_options.cache_dir, device="cpu", hub_offline=True))
    )
    with pytest.raises(ModelNotReady):
        runtime.pipeline()
    runtime.start()
    status = runtime.wait(60)
    assert status.state is ModelState.FAILED and "could not be loaded" in status.message
    assert "--" not in status.message and status.message.count(".") == 1  # one sentence, no flags for visitors
    assert "cannot be reached" in caplog.text and "--model" in caplog.text  # the reason and the fix: the log
    with pytest.raises(ModelNotReady, match="could not be loaded"):
        runtime.pipeline()
    runtime.use_tiny()
    status = runtime.wait(60)
    assert status.ready and "meaningless" in status.message
    assert runtime.pipeline().loaded.is_tiny


def live(translator, vad_model) -> LiveTranslation:
    return LiveTranslation(StreamingSession(translator, StreamingVad.for_new_stream(vad_model), "jpn", task="s2st"))


def test_the_player_gets_the_saved_timeline_piece_by_piece(translator, vad_model, hello_audio):
    state = live(translator, vad_model)
    audio = np.concatenate([hello_audio, np.zeros(SAMPLE_RATE_HZ, np.float32), hello_audio])
    handed = []
    for i in range(0, audio.size, 8000):
        piece = state.push(audio[i : i + 8000], SAMPLE_RATE_HZ, now=i / SAMPLE_RATE_HZ)
        if piece is not None:
            handed.append(piece)
    rest = state.finish()
    pieces = handed + ([rest] if rest is not None else [])
    assert pieces and state.speech.speech_samples > 0
    # Played back to back, the pieces are exactly the saved WAV: every sample once, the pauses kept.
    np.testing.assert_array_equal(np.concatenate(pieces), state.speech.audio())
    assert state.finish() is None


def test_downloads_and_timeline(translator, vad_model, hello_audio, tmp_path):
    state = live(translator, vad_model)
    state.push(np.concatenate([hello_audio, np.zeros(SAMPLE_RATE_HZ, np.float32)]), SAMPLE_RATE_HZ, now=0.0)
    state.finish()
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
    registry.get("tab-c", lambda: live(translator, vad_model), owner="session-1")
    registry.drop_owner("session-1")  # the tab closed
    assert registry.peek("tab-c") is None and len(registry) == 1
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

    shown = list(app.translate_text("Good morning.", "eng", "fra", SPEECH_AND_TEXT, Request()))
    (first_text, no_speech_yet, making), (text, wav, safety) = shown  # the text first, then its speech
    assert first_text == text and no_speech_yet is None and "Making the speech" in making
    assert safety.startswith("**Safety") and "Making" not in safety
    assert text
    raw = translator.translate(["Good morning."], Task.T2ST, "fra", src_lang="eng")[0].waveform
    expected = app.marker(Request())(raw)
    saved, _ = sf.read(wav, dtype="float32")
    assert not np.allclose(saved, np.clip(raw, -1, 1), atol=1e-3)  # changed by the mark …
    np.testing.assert_allclose(saved, np.clip(expected, -1, 1), atol=2e-4)  # … exactly as the marker marks it

    pushed = []  # sizes of what each marking stream's embedder was given

    class Counting:
        """Wraps an embedding stream and counts the samples pushed into it."""

        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def push(self, chunk):
            pushed.append(chunk.size)
            return self.inner.push(chunk)

        def ahead(self):
            rest, stream = self.inner.ahead()
            return rest, Counting(stream)

    class CountingWatermarker:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def stream(self, payload):
            return Counting(self.inner.stream(payload))

    marker = app.marker(Request())
    counted = dataclasses.replace(marker, watermarker=CountingWatermarker(marker.watermarker))
    state = LiveTranslation(
        StreamingSession(translator, StreamingVad.for_new_stream(vad_model), "jpn", task="s2st"), marker=counted
    )
    played = state.push(np.concatenate([hello_audio, np.zeros(SAMPLE_RATE_HZ, np.float32)]), SAMPLE_RATE_HZ, now=0.0)
    rest = state.finish()
    played = [p for p in (played, rest) if p is not None]
    assert played and state.speech.audio().size == sum(p.size for p in played)
    # Each sample of speech went into the embedder exactly once: the player plays the saved file's marked timeline,
    # and nothing is marked twice or prepended with silence to find its phase.
    assert sum(pushed) == state.speech.speech_samples


def test_only_the_operator_can_switch_the_shared_model_and_text_is_bounded(tiny_settings, tmp_path):
    import gradio as gr

    from compose.settings import WebSettings
    from ui.app import TEXT_ONLY, ParleyApp

    runtime = ModelRuntime(dataclasses.replace(tiny_settings, web=WebSettings(host="0.0.0.0", max_text_chars=100)))
    app = ParleyApp(runtime, tmp_path)
    demo = app.build()
    api_names = {d.get("api_name") for d in demo.config["dependencies"]}
    assert "use_tiny" not in api_names  # no public endpoint switches the model on a shared server
    with pytest.raises(gr.Error, match="operator"):
        app.use_tiny()
    assert not app.poll_status()[1]["visible"]
    runtime.start()
    assert runtime.wait(60).ready

    class Request:
        session_hash = "tab-long"

    with pytest.raises(gr.Error, match="at most 100"):
        next(app.translate_text("word " * 30, "eng", "fra", TEXT_ONLY, Request()))
    local = ParleyApp(ModelRuntime(tiny_settings), tmp_path)
    assert "use_tiny" in {d.get("api_name") for d in local.build().config["dependencies"]}  # 127.0.0.1: allowed


def test_live_state_is_reached_by_its_secret_not_by_the_session_hash(tiny_settings, tmp_path, hello_audio):
    from ui.app import SPEECH_AND_TEXT, ParleyApp

    runtime = ModelRuntime(tiny_settings)
    runtime.start()
    assert runtime.wait(60).ready
    app = ParleyApp(runtime, tmp_path)

    class Request:
        session_hash = "public-hash"

    chunk = (SAMPLE_RATE_HZ, hello_audio[: SAMPLE_RATE_HZ // 2])
    *_, key, _ = app.live_chunk(chunk, "eng", "spa", SPEECH_AND_TEXT, "balanced", True, None, Request())
    assert key and key != Request.session_hash and len(key) >= 24  # server-issued, unguessable
    # Another connection that knows (or fakes) the same session hash gets a fresh stream, not this one.
    *_, other, _ = app.live_chunk(chunk, "eng", "spa", SPEECH_AND_TEXT, "balanced", True, None, Request())
    assert other != key and app.registry.peek(key) is not app.registry.peek(other)
    assert app.live_stop(None)[-1]["value"] is None and app.live_stop(Request.session_hash)[-1]["value"] is None
    assert app.live_stop(key)[-1]["value"] is not None or app.registry.peek(key).finished
    app.unload(Request())
    assert app.registry.peek(key) is None and app.registry.peek(other) is None


def test_an_idle_stream_is_closed_with_its_downloads_kept_and_old_outputs_are_deleted(
    tiny_settings, tmp_path, hello_audio
):
    import os
    import time

    from compose.settings import WebSettings
    from ui.app import SPEECH_AND_TEXT, ParleyApp

    runtime = ModelRuntime(dataclasses.replace(tiny_settings, web=WebSettings(idle_timeout_s=5, retention_s=60)))
    runtime.start()
    assert runtime.wait(60).ready
    app = ParleyApp(runtime, tmp_path)

    class Request:
        session_hash = "idle-tab"

    key = None
    speech = np.concatenate([hello_audio, np.zeros(SAMPLE_RATE_HZ, np.float32)])
    for i in range(0, speech.size, SAMPLE_RATE_HZ // 2):
        *_, key, _ = app.live_chunk((SAMPLE_RATE_HZ, speech[i : i + SAMPLE_RATE_HZ // 2]), "eng", "spa",
                                 SPEECH_AND_TEXT, "balanced", False, key, Request())  # fmt: skip
    app.housekeeping(now=time.monotonic() + 1)  # not idle long enough yet
    assert app.registry.peek(key) is not None
    app.housekeeping(now=time.monotonic() + 10)  # a client that stopped sending (an API client without a heartbeat)
    assert app.registry.peek(key) is None and len(app.registry) == 0  # its state is freed …
    *_, status, _, wav, files = app.live_stop(key)
    assert "closed after a silence" in status and any(f.endswith("translation.srt") for f in files["value"])
    assert wav.endswith("translation.wav") and files["visible"]  # … its files kept
    old = tmp_path / "file-old"
    old.mkdir()
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    app.housekeeping()
    assert not old.exists() and any(tmp_path.iterdir())  # past retention: deleted; recent outputs stay


def test_unknown_language_codes_get_one_plain_sentence(tiny_settings, tmp_path):
    import gradio as gr

    from ui.app import SPEECH_AND_TEXT, ParleyApp, _plain_errors

    runtime = ModelRuntime(tiny_settings)
    runtime.start()
    assert runtime.wait(60).ready
    app = ParleyApp(runtime, tmp_path)
    translate_text = _plain_errors(app.translate_text)  # as the page registers it

    class Request:
        session_hash = "codes"

    for src, tgt, words in (("eng", "xyz", "Unknown language 'xyz'"), ("qqq", "spa", "Unknown language 'qqq'"),
                            ("eng", "ell", "speech output")):  # fmt: skip
        with pytest.raises(gr.Error) as caught:
            next(translate_text("Good morning.", src, tgt, SPEECH_AND_TEXT, Request()))
        message = str(caught.value.message)
        assert words in message and "list of choices" not in message and "Traceback" not in message


def test_switching_the_output_keeps_a_valid_target_and_says_so():
    from ui.app import SPEECH_AND_TEXT, TEXT_ONLY, keep_valid_target

    update, last, note = keep_valid_target(TEXT_ONLY, "fra", "fra")
    assert update["value"] == "fra" and note == ""  # French can be written: kept
    update, last, note = keep_valid_target(TEXT_ONLY, "ell", last)  # Greek, text only
    assert update["value"] == "ell" and last == "fra"
    update, last, note = keep_valid_target(SPEECH_AND_TEXT, "ell", last)  # back to speech: Greek cannot be spoken
    assert update["value"] == "fra" and "cannot be spoken" in note and "Greek" in note
    assert update["value"] in {code for _, code in update["choices"]}
