"""Vocoder voice matching: which of the model's vocoder voices sounds nearest to the source speaker.

By timbre when a speaker encoder is given, else by pitch (nearest median F0, range as a tie-breaker). The encoder is
Resemblyzer's GE2E speaker encoder (Wan et al. 2018, "Generalized end-to-end loss for speaker verification"), whose
weights ship inside the ``resemblyzer`` wheel; the cosine similarity of two embeddings is the voice similarity that
SeamlessExpressive reports (VSim, there with WavLM-based embeddings).

Each voice is measured once per model at start-up (:meth:`VoiceMatcher.prepare`, called by the composition root right
after the model is loaded: one text decode, then the vocoder once per voice) and cached in
``<options.cache_dir>/voices/<model>.json``, keyed by where the weights came from; later processes read the cache.
Matching itself (:meth:`VoiceMatcher.nearest`) only analyses the source, so a live commit never waits for the vocoder;
embedding the source (~0.2 s on a CPU core) runs off the live commit path (:class:`engine.live_voice.LiveVoice`).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from engine.audio import SAMPLE_RATE_HZ
from engine.prosody.analysis import PitchProfile, track_f0
from engine.prosody.options import ExpressiveOptions

if TYPE_CHECKING:
    from engine.translator import Translator

log = logging.getLogger(__name__)

#: Read by every vocoder voice to measure it; fixed so that cached profiles stay comparable.
PROFILE_SENTENCE = "Good morning, everyone. Thank you for joining us today; we have a lot to talk about."
PROFILE_LANG = "eng"
#: The sentence is about 20 tokens; the bound stops a model that never ends (the tiny model) from talking for minutes.
PROFILE_MAX_TOKENS = 40
#: Weight of the F0 range difference (semitones) against the median difference (semitones) in the pitch distance.
RANGE_WEIGHT = 0.25


#: Shorter speech (after resemblyzer's own silence trimming) gives no embedding: one partial window is 1.6 s, and
#: under ~0.5 s the vector says more about the phones than about the voice.
MIN_SPEECH_S = 0.5
#: Only the first this-many seconds are embedded: the voice is known by then, and the cost stays bounded.
MAX_SPEECH_S = 3.0


class SpeakerEncoder(Protocol):
    #: Identifies the encoder and its weights (cached voice embeddings from another encoder are measured again).
    name: str

    def embed(self, audio: np.ndarray) -> np.ndarray | None:
        """Unit-length embedding of the voice in ``audio`` (16 kHz mono float32); None when there is too little
        speech."""
        ...


class ResemblyzerEncoder:
    """Resemblyzer's encoder on the CPU, loaded once (about a second) by the composition root."""

    name = "resemblyzer-0.1"

    def __init__(self) -> None:
        from resemblyzer import VoiceEncoder, preprocess_wav

        self._encoder = VoiceEncoder("cpu", verbose=False)
        # Its first call imports librosa and numba (about a second alone, several on a busy server, holding the
        # GIL): here at start-up, not in the first live session's voice choice, which would stall every stream.
        hiss = np.random.default_rng(0).standard_normal(SAMPLE_RATE_HZ).astype(np.float32) * 0.01
        preprocess_wav(hiss, source_sr=SAMPLE_RATE_HZ)  # resampling and trimming (the hiss is trimmed away) ...
        self._encoder.embed_utterance(hiss)  # ... the mel spectrogram and the network

    def embed(self, audio: np.ndarray) -> np.ndarray | None:
        from resemblyzer import preprocess_wav

        head = np.asarray(audio, dtype=np.float32)[: round(MAX_SPEECH_S * SAMPLE_RATE_HZ)]
        if not np.any(head):
            return None
        speech = preprocess_wav(head, source_sr=SAMPLE_RATE_HZ)
        if speech.shape[0] < MIN_SPEECH_S * SAMPLE_RATE_HZ:
            return None
        return self._encoder.embed_utterance(speech).astype(np.float64)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


@dataclass(frozen=True)
class VoiceProfile:
    """One vocoder voice as measured on :data:`PROFILE_SENTENCE`."""

    speaker_id: int  # the vocoder's speaker id
    median_hz: float | None  # median F0; None when the rendering had no voiced speech
    range_st: float | None  # 10th–90th percentile F0 span, in semitones
    embedding: tuple[float, ...] | None = None  # unit speaker embedding; None without an encoder or speech


def nearest_by_pitch(profiles: Sequence[VoiceProfile], speaker: PitchProfile) -> int | None:
    """Speaker id nearest in median F0 (semitones), range as a tie-breaker; None when nothing compares."""
    candidates = [p for p in profiles if p.median_hz is not None]
    if speaker.median_hz is None or not candidates:
        return None

    def distance(p: VoiceProfile) -> float:
        median_st = abs(12.0 * math.log2(p.median_hz / speaker.median_hz))
        return median_st + RANGE_WEIGHT * abs(p.range_st - speaker.range_st)

    return min(candidates, key=distance).speaker_id


def nearest_by_embedding(profiles: Sequence[VoiceProfile], embedding: np.ndarray | None) -> int | None:
    """Speaker id of the most similar voice embedding (cosine); None when nothing compares."""
    candidates = [p for p in profiles if p.embedding is not None]
    if embedding is None or not candidates:
        return None
    return max(candidates, key=lambda p: cosine_similarity(np.asarray(p.embedding), embedding)).speaker_id


class VoiceMatcher:
    """Chooses the vocoder voice that sounds nearest to the source speaker: by timbre with ``encoder``, else by
    pitch."""

    def __init__(
        self, translator: Translator, options: ExpressiveOptions | None = None, encoder: SpeakerEncoder | None = None
    ) -> None:
        self._translator = translator
        self._encoder = encoder
        self._cache_dir = (options or ExpressiveOptions()).cache_dir
        self._profiles: tuple[VoiceProfile, ...] | None = None
        self._warned = False

    @property
    def cache_path(self) -> Path | None:
        if self._cache_dir is None:
            return None
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", self._translator.loaded.name)
        return Path(self._cache_dir) / "voices" / f"{safe}.json"

    @property
    def _source(self) -> str:
        """Where the weights came from (Hub name or folder; the tiny model's folder carries its recipe version)."""
        return str(self._translator.loaded.model.name_or_path)

    @property
    def _encoder_name(self) -> str | None:
        return self._encoder.name if self._encoder is not None else None

    @property
    def prepared(self) -> bool:
        return self._profiles is not None

    def prepare(self) -> tuple[VoiceProfile, ...]:
        """Read the cached voice profiles, or measure and cache them. Call once at start-up, after loading the model;
        later calls return the same profiles."""
        if self._profiles is None:
            self._profiles = self._read_cache() or self._measure()
        return self._profiles

    def nearest(self, source: np.ndarray, timbre: bool = True) -> int | None:
        """The speaker id that sounds nearest to ``source`` (by embedding, falling back to pitch when the source is
        too short to embed; by pitch alone, a few milliseconds, when not ``timbre``); None when nothing compares or
        :meth:`prepare` was not called (default voice)."""
        if self._profiles is None:
            if not self._warned:
                log.warning("Vocoder voices were not measured at start-up (VoiceMatcher.prepare): default voice used")
                self._warned = True
            return None
        source = np.asarray(source, dtype=np.float32)
        if timbre and self._encoder is not None:
            chosen = nearest_by_embedding(self._profiles, self._encoder.embed(source))
            if chosen is not None:
                return chosen
        return nearest_by_pitch(self._profiles, PitchProfile.of(track_f0(source)))

    def _measure(self) -> tuple[VoiceProfile, ...]:
        translator = self._translator
        encoded = translator.encode_text([PROFILE_SENTENCE], PROFILE_LANG)
        sequences = translator.generate_text(encoded, PROFILE_LANG, max_new_tokens=PROFILE_MAX_TOKENS)
        states = translator.decoder_states(encoded, sequences)
        profiles = []
        for speaker_id in range(translator.loaded.num_speakers):
            waveform = translator.synthesize(states, sequences, PROFILE_LANG, speaker_id).waveforms[0]
            pitch = PitchProfile.of(track_f0(waveform))
            embedding = self._encoder.embed(waveform) if self._encoder is not None else None
            vector = tuple(embedding.tolist()) if embedding is not None else None
            profiles.append(VoiceProfile(speaker_id, pitch.median_hz, pitch.range_st, vector))
        log.info("Measured %d vocoder voices of %s", len(profiles), translator.loaded.name)
        self._write_cache(profiles)
        return tuple(profiles)

    def _read_cache(self) -> tuple[VoiceProfile, ...] | None:
        path = self.cache_path
        if path is None or not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if (
                data["sentence"] != PROFILE_SENTENCE
                or data.get("source") != self._source
                or len(data["voices"]) != self._translator.loaded.num_speakers
                or data.get("encoder") != self._encoder_name
            ):
                return None  # measured on other weights (a rebuilt tiny model, another folder) or another way
            return tuple(
                VoiceProfile(**(v | {"embedding": _tuple_or_none(v.get("embedding"))})) for v in data["voices"]
            )
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("Ignoring the unreadable voice cache %s: %s", path, e)
            return None

    def _write_cache(self, profiles: list[VoiceProfile]) -> None:
        path = self.cache_path
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "model": self._translator.loaded.name,
            "source": self._source,
            "sentence": PROFILE_SENTENCE,
            "encoder": self._encoder_name,
            "voices": [asdict(p) for p in profiles],
        }
        path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def _tuple_or_none(values: list[float] | None) -> tuple[float, ...] | None:
    return tuple(values) if values is not None else None
