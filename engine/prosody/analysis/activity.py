"""Where the sound is: per-hop activity and the pause layout of a segment (speech span, pauses inside it)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.signal import butter, sosfilt

from engine.audio import SAMPLE_RATE_HZ
from engine.prosody.analysis.frames import HOP_S, drop_short_runs, frame_levels_db, runs

#: Frames quieter than this (dBFS, RMS over one hop) are silence whatever the rest of the segment does.
SILENCE_FLOOR_DB = -55.0
#: Frames this far below the segment's loud frames (95th percentile) are pauses.
PAUSE_DEPTH_DB = 30.0
#: Speech bursts shorter than this inside a pause (clicks, breaths) do not end the pause.
MIN_BURST_S = 0.03
#: A noisy room: the quietest hops (this percentile of the levels) are its noise floor, and a hop is speech only
#: when it rises this fraction of the way from the floor to the loud hops (at 10 dB SNR about 4 dB above the floor).
#: Without it, noise at 10–20 dB SNR was all "sound": no pause was found and the whole segment counted as speech.
NOISE_FLOOR_PERCENTILE = 15.0
NOISE_RISE_FRACTION = 0.35
#: ... and only when the loud hops stand this far above the floor: else there is no pause to find (one steady sound).
MIN_NOISE_GAP_DB = 6.0
#: ... and only when the floor lasts (see _has_noise_floor): this long, within this much of the floor percentile.
NOISE_RUN_S = 0.2
NOISE_FLOOR_SPREAD_DB = 3.0
#: ... and a fluctuating floor (babble: other talkers) is exceeded by its own peaks, so for counting syllables the
#: threshold is also at least this many standard deviations above the median of the floor's hops. On babble at
#: 10 dB SNR the syllables counted fell from +37 % to +7 % of the clean count; a steady floor (white, pink noise) has
#: no spread to add. Only syllable counting uses it: applied to pauses, loudness and pitch as well, it cut the clean
#: Spanish pause alignment from 0.975 to 0.826 (bench/expressive.py --items 12, same run).
NOISE_SPREAD_STD = 2.0
#: Levels are measured above this (Hz): pink and room noise put most of their power below speech, in slow swings
#: that a 10 ms hop sees as bursts.
SPEECH_BAND_LOW_HZ = 150.0


@lru_cache(maxsize=1)
def _speech_band() -> np.ndarray:
    return butter(4, SPEECH_BAND_LOW_HZ, btype="highpass", fs=SAMPLE_RATE_HZ, output="sos")


def activity(audio: np.ndarray, spread_std: float = 0.0) -> np.ndarray:
    """Per 10 ms hop: True where there is speech (or a sound as loud), False in silences, pauses and a room's
    steady noise floor; with ``spread_std`` (see NOISE_SPREAD_STD) also below a fluctuating floor's peaks."""
    band = sosfilt(_speech_band(), audio).astype(np.float32) if audio.size else np.zeros(0, np.float32)
    levels = frame_levels_db(band)
    loud, floor = float(np.percentile(levels, 95)), float(np.percentile(levels, NOISE_FLOOR_PERCENTILE))
    threshold = max(SILENCE_FLOOR_DB, loud - PAUSE_DEPTH_DB)
    if floor > SILENCE_FLOOR_DB and loud - floor > MIN_NOISE_GAP_DB:  # not digital silence, not one steady sound
        above_floor = floor + NOISE_RISE_FRACTION * (loud - floor)
        if _has_noise_floor(levels, floor, above_floor):
            floor_hops = levels[levels <= above_floor]
            spread = float(np.median(floor_hops)) + spread_std * float(np.std(floor_hops))
            threshold = max(threshold, above_floor, spread)
    return drop_short_runs(levels > threshold, round(MIN_BURST_S / HOP_S))


def _has_noise_floor(levels: np.ndarray, floor_db: float, above_floor_db: float) -> bool:
    """A room's noise floor lasts: some stretch of at least NOISE_RUN_S stays under ``above_floor_db`` at about the
    floor's level. Quiet stretches of clean speech (closures, kept gaps) are shorter, and a pause of digital silence
    lies far below a floor that its speech's quiet hops set."""
    run_hops = round(NOISE_RUN_S / HOP_S)
    return any(
        end - start >= run_hops and float(np.median(levels[start:end])) >= floor_db - NOISE_FLOOR_SPREAD_DB
        for start, end in runs(levels <= above_floor_db)
    )


@dataclass(frozen=True)
class PauseLayout:
    """Where the sound is: ``speech`` spans from the first to the last active hop; ``pauses`` are the silences of at
    least ``min_pause_s`` inside it. All in 10 ms hops, ends exclusive."""

    hops: int  # length of the analysed audio, in hops
    speech: tuple[int, int] | None  # first and last-plus-one active hop; None when nothing is active
    pauses: tuple[tuple[int, int], ...]  # (start, end) hops of each pause inside the speech

    @property
    def speech_hops(self) -> int:
        """Hops of speech, pauses excluded."""
        if self.speech is None:
            return 0
        return self.speech[1] - self.speech[0] - sum(end - start for start, end in self.pauses)

    def relative_positions(self) -> list[float]:
        """Each pause's position as a fraction of the speech (pauses excluded) that precedes it: 0 = start, 1 = end."""
        if self.speech is None or not self.speech_hops:
            return []
        positions, removed = [], 0
        for start, end in self.pauses:
            positions.append((start - self.speech[0] - removed) / self.speech_hops)
            removed += end - start
        return positions

    def hop_positions(self) -> np.ndarray:
        """Per hop: its position in the speech with pauses left out, 0 at the first active hop and 1 at the last;
        NaN outside the speech and in pauses (so the positions that are set rise strictly)."""
        position = np.full(self.hops, np.nan)
        if self.speech is None or self.speech_hops == 0:
            return position
        inside = np.zeros(self.hops, bool)
        inside[self.speech[0] : self.speech[1]] = True
        for start, end in self.pauses:
            inside[start:end] = False
        counted = np.cumsum(inside) - 1
        position[inside] = counted[inside] / max(1, self.speech_hops - 1)
        return position


def pause_layout(audio: np.ndarray, min_pause_s: float) -> PauseLayout:
    """The speech span and the pauses of at least ``min_pause_s`` in ``audio`` (16 kHz mono)."""
    active = activity(audio)
    spans = runs(active)
    if not spans:
        return PauseLayout(active.shape[0], None, ())
    speech = (spans[0][0], spans[-1][1])
    min_hops = round(min_pause_s / HOP_S)
    gaps = [(a_end, b_start) for (_, a_end), (b_start, _) in itertools.pairwise(spans)]
    return PauseLayout(active.shape[0], speech, tuple(g for g in gaps if g[1] - g[0] >= min_hops))
