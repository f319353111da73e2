"""Vocoder voice matching: which of the model's vocoder voices sounds nearest to the source speaker.

Each voice is measured once per model at start-up (:meth:`VoiceMatcher.prepare`, called by the composition root right
after the model is loaded: one text decode, then the vocoder once per voice) and cached in
``<options.cache_dir>/voices/<model>.json``, keyed by where the weights came from; later processes read the cache.
Matching itself (:meth:`VoiceMatcher.nearest`) only analyses the source, so a live commit never waits for the vocoder.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

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


@dataclass(frozen=True)
class VoiceProfile:
    """One vocoder voice as measured on :data:`PROFILE_SENTENCE`."""

    speaker_id: int  # the vocoder's speaker id
    median_hz: float | None  # median F0; None when the rendering had no voiced speech
    range_st: float | None  # 10th–90th percentile F0 span, in semitones


class VoiceMatcher:
    """Chooses the vocoder voice whose pitch is nearest to the source speaker's."""

    def __init__(self, translator: Translator, options: ExpressiveOptions | None = None) -> None:
        self._translator = translator
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
    def prepared(self) -> bool:
        return self._profiles is not None

    def prepare(self) -> tuple[VoiceProfile, ...]:
        """Read the cached voice profiles, or measure and cache them. Call once at start-up, after loading the model;
        later calls return the same profiles."""
        if self._profiles is None:
            self._profiles = self._read_cache() or self._measure()
        return self._profiles

    def nearest(self, source: np.ndarray) -> int | None:
        """Speaker id nearest in median F0 (semitones), range as a tie-breaker; None when the source is unvoiced,
        no voice could be measured, or :meth:`prepare` was not called (the default voice is then used)."""
        if self._profiles is None:
            if not self._warned:
                log.warning("Vocoder voices were not measured at start-up (VoiceMatcher.prepare): default voice used")
                self._warned = True
            return None
        speaker = PitchProfile.of(track_f0(np.asarray(source, dtype=np.float32)))
        candidates = [p for p in self._profiles if p.median_hz is not None]
        if speaker.median_hz is None or not candidates:
            return None

        def distance(p: VoiceProfile) -> float:
            median_st = abs(12.0 * math.log2(p.median_hz / speaker.median_hz))
            return median_st + RANGE_WEIGHT * abs(p.range_st - speaker.range_st)

        return min(candidates, key=distance).speaker_id

    def _measure(self) -> tuple[VoiceProfile, ...]:
        translator = self._translator
        encoded = translator.encode_text([PROFILE_SENTENCE], PROFILE_LANG)
        sequences = translator.generate_text(encoded, PROFILE_LANG, max_new_tokens=PROFILE_MAX_TOKENS)
        states = translator.decoder_states(encoded, sequences)
        profiles = []
        for speaker_id in range(translator.loaded.num_speakers):
            waveform = translator.synthesize(states, sequences, PROFILE_LANG, speaker_id).waveforms[0]
            pitch = PitchProfile.of(track_f0(waveform))
            profiles.append(VoiceProfile(speaker_id, pitch.median_hz, pitch.range_st))
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
            ):
                return None  # measured on other weights (a rebuilt tiny model, another folder) or another way
            return tuple(VoiceProfile(**v) for v in data["voices"])
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
            "voices": [asdict(p) for p in profiles],
        }
        path.write_text(json.dumps(data, indent=1), encoding="utf-8")
