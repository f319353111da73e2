"""The expressive stage: carries the source speaker's pauses, pace, pitch and loudness onto translated speech.

SeamlessExpressive's models cover six target languages and their weights are gated, so Parley transfers prosody
with signal processing instead, for every speech-output language. One :class:`ExpressiveStage` per engine; its
:meth:`ExpressiveStage.apply` takes one segment's source speech and its translated speech (16 kHz mono float32) and:

1. **pauses** — removes the translation's own pauses (gaps that slowing down could stretch to ``min_pause_s``) and
   inserts the source's pauses (≥ ``min_pause_s``) at the same relative position in the speech, with their source
   length; leading and trailing silence follow the source;
2. **pace** — time-stretches the speech (Rubber Band, :mod:`engine.prosody.timescale`) so its syllable rate is the
   speaker's × the ratio of the two languages' typical syllable rates (``assets/expressive/duration_factors.tsv``;
   Spanish is spoken with ~1.26× English's syllables per second), within ``min_speed``–``max_speed``; when no syllable
   can be counted, its duration is the source speech duration × the language's duration factor instead;
3. **pitch** — moves the median F0 and the F0 range toward the speaker's and gives the speech the speaker's phrase
   intonation (Praat's F0 tracker; :mod:`engine.prosody.intonation`), in the same Rubber Band pass; unvoiced
   stretches are left at their own pitch, so fricatives and noise are not shifted;
4. **loudness** — matches the segment's ITU-R BS.1770 loudness (K-weighted, gated) to the source's, with a peak
   ceiling so clipping is never introduced.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine.audio import SAMPLE_RATE_HZ
from engine.prosody.analysis import (
    HOP_S,
    HOP_SAMPLES,
    PauseLayout,
    activity,
    count_syllables,
    frame_levels_db,
    loudness_lufs,
    pause_layout,
    speech_loudness_lufs,
    track_f0,
)
from engine.prosody.denoise import denoise
from engine.prosody.intonation import pitch_shift_st
from engine.prosody.languages import read_duration_factors, read_syllable_rates
from engine.prosody.options import ExpressiveOptions
from engine.prosody.timescale import retime

if TYPE_CHECKING:
    from engine.voices import VoiceMatcher

log = logging.getLogger(__name__)

#: The translation's own pauses are shortened to this before the source's pauses are inserted.
KEPT_GAP_S = 0.06
#: A source pause is inserted at the quietest 10 ms frame within this distance of its ideal position.
PAUSE_SEARCH_S = 0.15
#: Fade at each cut where a pause is inserted, so no click is heard.
FADE_S = 0.005
#: Speech shorter than this (64 ms) is not re-timed: too short to carry pace or pitch.
MIN_RETIME_SAMPLES = 1024


@dataclass(frozen=True)
class _Plan:
    """What one apply call will do, decided from both analyses before any audio is touched."""

    speed: float  # neutral speech duration / target speech duration, within the options' bounds
    shift_st: np.ndarray  # per 10 ms hop of the compacted translation: pitch change in semitones (0 when unvoiced)
    pause_positions: list[float]
    pause_samples: list[int]
    lead_samples: int
    trail_samples: int


class ExpressiveStage:
    """Carries the source speaker's prosody onto translated speech, one segment at a time. Stateless per call, so
    one stage may serve every stream; it holds no model (the optional :class:`VoiceMatcher` holds a translator)."""

    def __init__(self, options: ExpressiveOptions | None = None, voices: VoiceMatcher | None = None) -> None:
        self.options = options or ExpressiveOptions()
        self.voices = voices
        self._factors = read_duration_factors(self.options.duration_factors_tsv)
        self._syllable_rates = read_syllable_rates(self.options.duration_factors_tsv)

    @property
    def enabled(self) -> bool:
        return self.options.enabled

    def speaker_for(self, source: np.ndarray, timbre: bool = True) -> int | None:
        """The vocoder voice nearest to the speaker of ``source`` (by timbre, or by pitch alone when not ``timbre``:
        see :meth:`engine.voices.VoiceMatcher.nearest`); None means the default voice."""
        if not self.enabled or self.voices is None:
            return None
        return self.voices.nearest(source, timbre)

    def duration_factor(self, tgt_lang: str, src_lang: str | None = None) -> float:
        source = self._factors.get(src_lang, 1.0) if src_lang is not None else 1.0
        return self._factors.get(tgt_lang, 1.0) / source

    def syllable_rate_ratio(self, tgt_lang: str, src_lang: str | None = None) -> float:
        """Typical syllables per second of the target language over the source's. A language without a measured
        rate (or an unknown source language) counts as English's: equal rates are the assumption that errs least."""
        source = self._syllable_rates.get(src_lang, 1.0) if src_lang is not None else 1.0
        return self._syllable_rates.get(tgt_lang, 1.0) / source

    def apply(
        self,
        source: np.ndarray,
        translated: np.ndarray,
        tgt_lang: str,
        src_lang: str | None = None,
        live: bool = False,
    ) -> np.ndarray:
        """Translated speech of one segment with the source's prosody; 16 kHz mono float32 in and out.

        The output follows the source's timing: its leading and trailing silence and its pauses are the source's;
        its speech is paced between the source speech's duration × the language factor and the speaker's syllable
        rate × the languages' syllable-rate ratio (``rate_follow``), within the speed bounds. Silent translation gives
        silence; a source without sound leaves the translation as it is. ``live`` (one speech chunk of a live
        stream) re-times with Rubber Band's faster live settings (:func:`engine.prosody.timescale.retime`).
        """
        translated = np.nan_to_num(np.asarray(translated, dtype=np.float32))
        if not self.enabled or translated.size == 0:
            return translated
        source = np.nan_to_num(np.asarray(source, dtype=np.float32))
        opts = self.options
        heard = source
        if opts.denoise_analysis:
            source = denoise(source)  # analysis only: the source's samples never reach the output
        # The speech's loudness, a noisy room's floor (its hops outside speech) subtracted: noise is not transferred.
        target_lufs = speech_loudness_lufs(heard, activity(source))
        # Gaps that slowing down could stretch into a pause (≥ min_pause_s × min_speed) count as the translation's own
        # pauses, so that the output's pauses are only the source's.
        neutral = pause_layout(translated, opts.min_pause_s * opts.min_speed)
        if neutral.speech is None:
            return np.zeros_like(translated)
        speaker = pause_layout(source, opts.min_pause_s) if source.size else PauseLayout(0, None, ())
        if speaker.speech is None:
            log.debug("source has no sound; translation left as it is")
            return translated
        speech = self._compact(translated, neutral)
        plan = self._plan(
            source,
            speaker,
            speech,
            self.duration_factor(tgt_lang, src_lang),
            self.syllable_rate_ratio(tgt_lang, src_lang),
        )
        if speech.shape[0] >= MIN_RETIME_SAMPLES:
            speech = self._retime(speech, plan, live)
        out = self._insert_pauses(speech, plan)
        return self._match_loudness(out, target_lufs)

    # -- steps --

    def _compact(self, translated: np.ndarray, layout: PauseLayout) -> np.ndarray:
        """The translation's speech only: edges trimmed, its own pauses shortened to ``KEPT_GAP_S``."""
        first, last = layout.speech
        keep = round(KEPT_GAP_S / 2 / HOP_S)
        pieces, cursor = [], first
        for start, end in layout.pauses:
            pieces.append(translated[cursor * HOP_SAMPLES : (start + keep) * HOP_SAMPLES])
            cursor = end - keep
        pieces.append(translated[cursor * HOP_SAMPLES : last * HOP_SAMPLES])
        return np.concatenate(pieces)

    def _plan(
        self, source: np.ndarray, speaker: PauseLayout, speech: np.ndarray, factor: float, rate_ratio: float
    ) -> _Plan:
        opts = self.options
        neutral_s = speech.shape[0] / SAMPLE_RATE_HZ
        source_s = speaker.speech_hops * HOP_S
        log_speed = math.log(neutral_s / max(source_s * factor, HOP_S))  # same duration, language factor applied
        syllables, source_syllables = count_syllables(speech), count_syllables(source)
        if syllables and source_syllables:  # the speaker's syllable rate, scaled to the target language's norm
            rate_speed = neutral_s * rate_ratio * (source_syllables / max(source_s, HOP_S)) / syllables
            log_speed += opts.rate_follow * (math.log(rate_speed) - log_speed)
        speed = float(np.clip(math.exp(log_speed), opts.min_speed, opts.max_speed))
        shift = pitch_shift_st(track_f0(speech), track_f0(source), speaker, opts)
        samples = [(end - start) * HOP_SAMPLES for start, end in speaker.pauses]
        return _Plan(
            speed=speed,
            shift_st=shift,
            pause_positions=speaker.relative_positions(),
            pause_samples=samples,
            lead_samples=speaker.speech[0] * HOP_SAMPLES,
            trail_samples=max(0, source.shape[0] - speaker.speech[1] * HOP_SAMPLES),
        )

    def _retime(self, speech: np.ndarray, plan: _Plan, live: bool) -> np.ndarray:
        """One Rubber Band pass: the pace, and the pitch change of each hop (centred on its 10 ms) per sample."""
        hop_centres = np.arange(plan.shift_st.shape[0]) * HOP_SAMPLES
        shift = np.interp(np.arange(speech.shape[0]), hop_centres, plan.shift_st)
        return retime(speech, plan.speed, shift, live)

    def _insert_pauses(self, speech: np.ndarray, plan: _Plan) -> np.ndarray:
        """Cut the speech at the quietest hop near each source pause's relative position and insert the pause.

        The cut usually falls in a quiet stretch (a stop closure, a kept gap); that stretch is heard as part of the
        pause, so the inserted silence is shortened by it and the pause lasts as long as the source's."""
        levels = frame_levels_db(speech)
        quiet = ~activity(speech)
        search = round(PAUSE_SEARCH_S / HOP_S)
        fade = round(FADE_S * SAMPLE_RATE_HZ)
        cuts, already_quiet = [], []
        for position in plan.pause_positions:
            centre = round(position * levels.shape[0])
            low, high = max(1, centre - search), min(levels.shape[0] - 1, centre + search + 1)
            hop = low + int(np.argmin(levels[low:high])) if high > low else centre
            cuts.append(int(np.clip(hop * HOP_SAMPLES + HOP_SAMPLES // 2, 0, speech.shape[0])))
            already_quiet.append(_quiet_hops_around(quiet, hop) * HOP_SAMPLES)
        pieces, cursor = [np.zeros(plan.lead_samples, np.float32)], 0
        for cut, pause, quiet_samples in zip(cuts, plan.pause_samples, already_quiet, strict=True):
            cut = max(cut, cursor)
            piece = speech[cursor:cut].copy()
            _fade(piece, fade, fade_in=cursor > 0)
            pieces += [piece, np.zeros(max(0, pause - quiet_samples), np.float32)]
            cursor = cut
        tail = speech[cursor:].copy()
        _fade(tail, fade, fade_in=cursor > 0, fade_out=False)
        pieces += [tail, np.zeros(plan.trail_samples, np.float32)]
        return np.concatenate(pieces)

    def _match_loudness(self, audio: np.ndarray, target_lufs: float) -> np.ndarray:
        opts = self.options
        current = loudness_lufs(audio)
        gain_db = 0.0
        if math.isfinite(current) and math.isfinite(target_lufs):
            gain_db = min(target_lufs - current, opts.max_gain_db)
        gain = 10.0 ** (gain_db / 20.0)
        peak = float(np.max(np.abs(audio)))
        if peak * gain > opts.peak_ceiling:
            gain = opts.peak_ceiling / peak
        return (audio * gain).astype(np.float32)


def _quiet_hops_around(quiet: np.ndarray, hop: int) -> int:
    """Length of the run of quiet hops that contains ``hop`` (0 when ``hop`` is not quiet)."""
    if not 0 <= hop < quiet.shape[0] or not quiet[hop]:
        return 0
    start, end = hop, hop + 1
    while start > 0 and quiet[start - 1]:
        start -= 1
    while end < quiet.shape[0] and quiet[end]:
        end += 1
    return end - start


def _fade(piece: np.ndarray, samples: int, fade_in: bool, fade_out: bool = True) -> None:
    """Short linear fades, in place, at the cut edges of ``piece``."""
    n = min(samples, piece.shape[0] // 2)
    if n == 0:
        return
    ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
    if fade_in:
        piece[:n] *= ramp
    if fade_out:
        piece[-n:] *= ramp[::-1]
