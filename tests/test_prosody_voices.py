"""Voice choice by timbre: Resemblyzer embeddings on espeak-ng voices, and the matcher's embedding path."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from engine.audio import load_audio
from engine.live_voice import LiveVoice
from engine.prosody import ExpressiveOptions
from engine.voices import (
    PROFILE_SENTENCE,
    ResemblyzerEncoder,
    VoiceMatcher,
    VoiceProfile,
    cosine_similarity,
    nearest_by_embedding,
)
from tests.conftest import REPO, espeak


@pytest.fixture(scope="module")
def encoder():
    return ResemblyzerEncoder()


def test_same_voice_is_more_similar_than_another(encoder, speech_dir):
    def embed(text, voice, name):
        return encoder.embed(load_audio(espeak(text, speech_dir / f"{name}.wav", voice=voice)))

    one = embed("Welcome to the weekly meeting of the team", "en+m3", "a")
    same = embed("Please read the notes before Thursday", "en+m3", "b")
    other = embed("Please read the notes before Thursday", "en+f4", "c")
    assert np.linalg.norm(one) == pytest.approx(1.0, abs=1e-4)
    assert cosine_similarity(one, same) > cosine_similarity(one, other) + 0.05
    assert encoder.embed(np.zeros(16000, np.float32)) is None  # no speech, no embedding


def test_a_loaded_encoder_imports_nothing_more_when_it_first_embeds(speech_dir):
    """Resemblyzer imports librosa and numba on first use, for seconds with the GIL held: that belongs to start-up,
    not to the first live session's voice choice. A fresh interpreter, since this one has imported them already."""
    wav = espeak("Welcome to the weekly meeting of the team", speech_dir / "first-embed.wav")
    script = (
        "import sys\n"
        "from engine.audio import load_audio\n"
        "from engine.voices import ResemblyzerEncoder\n"
        f"speech = load_audio({str(wav)!r})\n"
        "encoder = ResemblyzerEncoder()\n"
        "before = set(sys.modules)\n"
        "assert encoder.embed(speech) is not None\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]", f"imported on the first embed: {done.stdout.strip()[:500]}"


def test_nearest_by_embedding_picks_the_most_similar():
    profiles = [VoiceProfile(i, 100.0, 3.0, tuple(v)) for i, v in enumerate(np.eye(3))]
    assert nearest_by_embedding(profiles, np.array([0.1, 0.9, 0.2])) == 1
    assert nearest_by_embedding(profiles, None) is None


class FakeEncoder:
    """Embeds a signal by its loudness and zero-crossing rate: enough to tell the tiny model's voices apart."""

    name = "fake-1"

    def embed(self, audio):
        if not np.any(audio):
            return None
        vector = np.array([np.sqrt(np.mean(audio**2)), np.mean(np.abs(np.diff(np.sign(audio)))), 1.0])
        return vector / np.linalg.norm(vector)


def test_matcher_measures_embeddings_at_start_up_and_caches_them(translator, tmp_path, monkeypatch, speech_dir):
    options = ExpressiveOptions(cache_dir=tmp_path)
    matcher = VoiceMatcher(translator, options, encoder=FakeEncoder())
    pitch_only = {"model": translator.loaded.name, "source": str(translator.loaded.model.name_or_path),
                  "sentence": PROFILE_SENTENCE, "encoder": None,
                  "voices": [{"speaker_id": i, "median_hz": 100.0, "range_st": 2.0} for i in range(8)]}  # fmt: skip
    matcher.cache_path.parent.mkdir(parents=True)
    matcher.cache_path.write_text(json.dumps(pitch_only), encoding="utf-8")
    profiles = matcher.prepare()  # a cache measured without this encoder is measured again
    assert all(p.embedding is not None and len(p.embedding) == 3 for p in profiles)
    cached = json.loads(matcher.cache_path.read_text(encoding="utf-8"))
    assert cached["encoder"] == "fake-1"

    def no_synthesis(*args, **kwargs):
        raise AssertionError("profiles must come from the cache")

    monkeypatch.setattr(translator, "synthesize", no_synthesis)
    again = VoiceMatcher(translator, options, encoder=FakeEncoder())
    assert again.prepare() == profiles
    speech = load_audio(espeak("Good morning everyone", speech_dir / "vm.wav"))
    expected = nearest_by_embedding(profiles, FakeEncoder().embed(speech))
    assert expected is not None and again.nearest(speech) == expected


class SlowTimbreStage:
    """A stage whose timbre choice takes as long as a real speaker embedding; by pitch it answers at once."""

    enabled = True

    def __init__(self) -> None:
        self.timbre_calls = 0

    def speaker_for(self, audio, timbre=True):
        if not timbre:
            return 2
        self.timbre_calls += 1
        time.sleep(0.3)
        return 5

    def apply(self, heard, speech, tgt_lang, src_lang, live):
        assert live  # the live path asks for the live settings
        return speech


def test_live_voice_chooses_by_timbre_off_the_commit_path():
    stage, audio = SlowTimbreStage(), np.ones(16000, np.float32)
    live = LiveVoice(stage, default_voice=0)
    live.start_segment()
    started = time.perf_counter()
    first = live.voice(audio)
    assert first == 2 and time.perf_counter() - started < 0.15  # by pitch: the commit never waits for the embedding
    live.timbre.join(5.0)
    assert live.voice(audio) == 2  # the voice never changes inside a segment
    live.start_segment()
    assert live.voice(audio) == 5  # later segments: by timbre
    assert stage.timbre_calls == 1
    assert np.array_equal(live.shape(audio, audio[:100], "spa", "eng"), audio[:100])


def test_the_pipeline_matches_voices_by_timbre(pipeline):
    profiles = pipeline.expressive.voices.prepare()
    assert len(profiles) == pipeline.translator.loaded.num_speakers
    assert all(p.embedding is not None and len(p.embedding) == 256 for p in profiles)
