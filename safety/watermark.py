"""Audio watermark: every sample Parley synthesises carries a keyed mark that anyone holding the key can find.

Built-in method (default): keyed spread spectrum in the log energy of time-frequency tiles (16 ms x 125 Hz) in the
band that survives telephone channels and codecs (625-3375 Hz), written from the published literature:

* chips are ±1 per tile, modulated by the coded bit of the symbol that owns the tile, and detected by correlating
  de-trended log energies with the key's chips (Kirovski & Malvar, "Spread-spectrum watermarking of audio signals",
  IEEE Trans. Signal Process. 51(4), 2003: chips in log magnitude, the host's envelope removed before correlating).
  The feature is a tile's log energy minus the mean of its two frequency neighbours, clipped to ±6 dB: it ignores
  gain, equalisation slopes and speech onsets. A symbol owns 2-3 adjacent bands over eight adjacent columns
  (128 ms) with chips in a checkerboard: alternating along frequency, which that feature sees twice as strongly as
  random chips, and along time, so that the host's own spectral fine structure (voice harmonics, which for
  200-300 Hz voices alternate from one 125 Hz band to the next), nearly unchanged from one 16 ms column to the
  next, cancels out of the correlation. Short frames (16 ms, 62.5 Hz bins) blur those harmonics in the first
  place (the payload then survives white noise and 2-second excerpts far more often for high voices). The
  detector weights each tile by the fraction of its power above the band's noise floor (1 - noise / power), so
  tiles that added noise has buried count little;
* informed embedding: the embedder knows the host, so each symbol only adds what is missing to reach a target
  correlation instead of fighting the speech ("improved spread spectrum", Malvar & Florêncio, IEEE Trans. Signal
  Process. 51(4), 2003), measured in closed loop through resynthesis. The missing part goes preferably to tiles
  quieter than their neighbours, which mask it and cost the least energy per dB; every change is multiplicative,
  so digital silence stays silent. Each 128 ms segment's added energy is capped 23 dB below its own plus what
  earlier segments left unused (at most 12 dB more), so no prefix of the stream has an SNR below 23 dB. Over that
  budget, the symbols whose changes cost the most energy (where the host fights the mark hardest) are given up
  to the error-correcting code rather than every change scaled down, which would leave many symbols half way;
* a 1.92-second period carries 42 pilot symbols plus the 32-bit payload with a CRC-16 under a rate-1/2
  convolutional code with soft Viterbi decoding (:mod:`safety.watermark_ecc`), so any 2-second excerpt holds one
  whole period. The detector searches the time offset (64-sample steps) and the period's phase by the pilots,
  decodes the 4 best placements and keeps one whose CRC passes (searching a list of the 16 likeliest decodes of
  each when the pilots suggest a mark): the score is then a t-statistic over every symbol instance, each clipped
  so that symbols the host overwhelmed cannot dominate;
* marked stretches are the runs of symbol instances that agree with the decoded pattern by a high summed
  log-likelihood ratio, found to 128 ms; every 0.5-second window's score is reported for display.

The key comes from ``PARLEY_WATERMARK_KEY``. When it is unset, the public development key
:data:`DEVELOPMENT_KEY` is used and a warning is logged: marks made with it prove nothing. The key is never logged
or shown (``WatermarkKey`` hides it in ``repr``).

Command line: ``python -m safety.watermark detect FILE...`` prints detection, payload and watermarked time ranges.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import os
import sys
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path
from typing import Protocol

import numpy as np
import scipy.fft
from scipy.signal import resample_poly
from scipy.special import ndtr

from safety import watermark_ecc as ecc

logger = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16_000
KEY_ENV = "PARLEY_WATERMARK_KEY"
#: Public key for development and tests only; anyone can forge or detect marks made with it.
DEVELOPMENT_KEY = "parley-development-key-do-not-use-in-production"
#: Natural-log power units per decibel: options are in dB, the tile features in ln(power).
_LN_PER_DB = math.log(10.0) / 10.0


class WatermarkError(RuntimeError):
    """The watermark could not be embedded or read (bad input, missing backend, failed external tool)."""


class WatermarkKey:
    """The secret that seeds every keyed pattern; hidden from ``repr`` and ``str`` so it never reaches logs."""

    def __init__(self, secret: str | bytes) -> None:
        secret_bytes = secret.encode() if isinstance(secret, str) else bytes(secret)
        if not secret_bytes:
            raise ValueError("the watermark key must not be empty")
        # BLAKE2b takes keys of at most 64 bytes; longer secrets are hashed down to 64 first.
        self._secret = secret_bytes if len(secret_bytes) <= 64 else hashlib.blake2b(secret_bytes).digest()

    @classmethod
    def from_env(cls) -> WatermarkKey:
        """``PARLEY_WATERMARK_KEY``, or the development key with a warning when it is unset or empty."""
        secret = os.environ.get(KEY_ENV, "")
        if not secret:
            logger.warning("%s is not set: using the public development watermark key", KEY_ENV)
            secret = DEVELOPMENT_KEY
        return cls(secret)

    def seed(self, purpose: str) -> int:
        """A 64-bit seed for one keyed pattern; different purposes give independent patterns."""
        digest = hashlib.blake2b(purpose.encode(), key=self._secret, digest_size=8, person=b"parley-wm")
        return int.from_bytes(digest.digest(), "little")

    def __repr__(self) -> str:
        return "WatermarkKey(<hidden>)"

    __str__ = __repr__


@dataclass(frozen=True)
class WindowScore:
    """Evidence for the mark in one stretch of the recording."""

    start_s: float
    end_s: float
    #: z-score of the correlation with the expected pattern in this window (about N(0, 1) without a mark).
    score: float
    present: bool


@dataclass(frozen=True)
class WatermarkResult:
    detected: bool
    #: The 32-bit payload when it decoded with a valid CRC, else None (also when nothing was detected).
    payload: int | None
    #: Detection statistic (z-score of the synchronisation correlation, searched over all offsets).
    score: float
    #: Chance of evidence this strong in unmarked audio: Bonferroni over the placements searched for the pilots,
    #: or the chance that a random decode among those tried passes the CRC, whichever is smaller.
    p_value: float
    #: Evidence over time, for display; ``present`` where the window's middle lies in a marked range.
    windows: list[WindowScore] = field(default_factory=list)
    #: (start_s, end_s) of each stretch found to carry the mark, in order; empty when nothing was detected.
    marked_s: list[tuple[float, float]] = field(default_factory=list)


def merge_windows(windows: list[WindowScore]) -> list[tuple[float, float]]:
    """Merged (start_s, end_s) ranges of the windows marked present, for backends that localise by window."""
    ranges: list[tuple[float, float]] = []
    for window in windows:
        if not window.present:
            continue
        if ranges and window.start_s <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], window.end_s))
        else:
            ranges.append((window.start_s, window.end_s))
    return ranges


class Watermarker(Protocol):
    """What every backend offers: mark audio with a 32-bit payload, and look for the mark."""

    def embed(self, audio: np.ndarray, sample_rate_hz: int, payload: int) -> np.ndarray: ...

    def detect(self, audio: np.ndarray, sample_rate_hz: int) -> WatermarkResult: ...


def make_payload(deployment_id: int, session_id: int) -> int:
    """Pack a 16-bit deployment id and a 16-bit session id into the 32-bit payload."""
    if not (0 <= deployment_id < 1 << 16 and 0 <= session_id < 1 << 16):
        raise ValueError("deployment_id and session_id must each fit in 16 unsigned bits")
    return deployment_id << 16 | session_id


@dataclass(frozen=True)
class WatermarkOptions:
    #: STFT frame length in samples at 16 kHz (16 ms); the hop is half of it, with square-root Hann windows. Short
    #: frames (62.5 Hz bins) blur the harmonics of high voices, whose peaks and valleys 250-350 Hz apart otherwise
    #: fight the mark: measured on 50 espeak clips, 32 ms frames read the payload under white noise at 20 dB SNR on
    #: 74 % of clips and from a 2-second excerpt on 80 %, 16 ms frames on 96 % and 98 %.
    frame_samples: int = 256
    #: Band carrying the mark: above a 500 Hz high-pass, below telephone and 8 kHz-resampling cut-offs.
    band_low_hz: float = 625.0
    band_high_hz: float = 3375.0
    #: STFT bins per tile in frequency (2 bins = 125 Hz).
    bins_per_band: int = 2
    #: STFT frames per tile in time (2 frames = 16 ms); one column of tiles.
    frames_per_tile: int = 2
    #: Columns marked as one batch (closed loop, energy budget); bounds the streaming delay (8 columns = 128 ms).
    segment_columns: int = 8
    #: Segments per period; the period (segment_columns x segments_per_period columns) carries one payload.
    segments_per_period: int = 15
    #: Blocks of adjacent bands per column; a symbol owns one block over columns_per_symbol columns.
    blocks_per_column: int = 10
    #: Adjacent columns a symbol spans (10 blocks x 8 columns: 2-3 bands x 8 columns = 16-24 tiles per symbol).
    columns_per_symbol: int = 8
    #: Known symbols per period, used to find the period's start.
    pilot_symbols: int = 42
    #: Correlation each symbol is brought up to, per tile, in dB of tile energy.
    target_db: float = 2.0
    #: Change always added to every tile, in dB, so the mark is present even where the host already agrees.
    base_db: float = 0.1
    #: Largest change of any tile's energy, in dB: bounds audibility where the host fights the mark.
    max_change_db: float = 6.0
    #: How strongly the missing correlation goes to tiles quieter than their neighbours (0 = evenly); 1 measured
    #: best: such tiles are masked and cost the least energy per dB.
    masking_exponent: float = 1.0
    #: Expected feature change per dB of tile change after overlap-add resynthesis; each pass divides by it.
    resynthesis_gain: float = 0.7
    #: Most energy the mark may add to any segment, in dB relative to the segment's own energy (SNR bound).
    #: -23 rather than -24: measured over three clip sets, white noise at 20 dB reads 0.94-1.00 of payloads instead
    #: of 0.86-0.96, for about 1 dB of SNR (mean 25.9 dB, min 25.4).
    max_mark_db: float = -23.0
    #: Most a segment may exceed its own budget with what earlier segments left unused, in dB. Segments are short
    #: (128 ms), so a loud stretch that the host fights hard needs the budget quieter ones before it left unused
    #: (12 dB read the payload under noise on 96 % of clips, 6 dB on 90 %); the stream's SNR bound is unchanged.
    max_boost_db: float = 12.0
    #: Embedding passes per segment: each resynthesises, measures and tops up symbols still short of target.
    embed_passes: int = 2
    #: Tiles quieter than this (dBFS, per-sample RMS) are left alone: silence stays silent.
    floor_dbfs: float = -60.0
    #: De-trended features are clipped to ± this (dB): onsets and offsets would otherwise dominate correlations.
    feature_clip_db: float = 6.0
    #: The detector ignores tiles below the band's noise floor (its 10th percentile) by more than this (dB); the
    #: rest are weighted by the fraction of their power above that floor.
    detector_min_snr_db: float = -3.0
    #: Time-offset search step of the detector, in samples (a quarter of a 16 ms column).
    search_step_samples: int = 64
    #: Finest offset step (samples) to which the best offset is refined by halving the search step (no refinement
    #: when equal to the search step: halving it again measured no better and costs two more STFTs).
    refine_step_samples: int = 64
    #: Fewest usable tiles for a symbol instance to count in detection.
    min_tiles_per_symbol: int = 3
    #: Placements (offset and phase) with the best pilot scores that the detector tries to decode.
    decode_candidates: int = 4
    #: Decodes per placement tried (list Viterbi, best first) when the best decode fails the CRC but the pilots
    #: suggest the mark: their p-value is at most list_decode_p. Unmarked audio then passes the CRC with a chance
    #: of at most list_decode_p x decode_candidates x decode_list_size x 2**-16 (5e-5 at the defaults). Measured on
    #: 14,000 unmarked clips of 2-10 s: the best path alone passed the CRC on 1, the gated list on 1 more. On six
    #: sets of 50 marked clips, this gate read 3 of the 4 payloads (white noise, 2 s crops) that a gate at the
    #: detection score (pilot z >= 5) missed.
    decode_list_size: int = 16
    list_decode_p: float = 0.05
    #: Detection score above which the mark counts as detected.
    detect_z: float = 5.0
    #: Localisation window length and hop, seconds.
    window_s: float = 0.5
    window_hop_s: float = 0.25
    #: Window z-score above which a window clearly carries the mark (marked stretches score 4-6); the mark's
    #: strength for localisation is measured over such windows.
    window_z: float = 3.5
    #: Chance that unmarked audio beside marked audio is reported as a marked stretch (localisation threshold).
    localise_alpha: float = 1e-3

    def __post_init__(self) -> None:
        if self.frame_samples <= 0 or self.frame_samples % 2:
            raise ValueError("frame_samples must be positive and even")
        if not 0 < self.band_low_hz < self.band_high_hz <= SAMPLE_RATE_HZ / 2:
            raise ValueError("need 0 < band_low_hz < band_high_hz <= 8000")
        if min(self.bins_per_band, self.frames_per_tile, self.segment_columns, self.segments_per_period) < 1:
            raise ValueError("bins_per_band, frames_per_tile, segment_columns and segments_per_period must be >= 1")
        if self.band_count < 3:
            raise ValueError("the band must hold at least 3 tiles in frequency")
        if self.blocks_per_column < 1 or self.band_count < 2 * self.blocks_per_column:
            raise ValueError("blocks_per_column must be >= 1, with at least two bands per block")
        if self.columns_per_symbol < 1 or self.segment_columns % self.columns_per_symbol:
            raise ValueError("columns_per_symbol must be >= 1 and divide segment_columns")
        if self.period_columns // self.columns_per_symbol * self.blocks_per_column != self.symbols_per_period:
            raise ValueError(
                "period_columns / columns_per_symbol x blocks_per_column must equal pilot_symbols + coded bits"
            )
        if self.pilot_symbols < 1 or self.target_db < 0 or self.base_db < 0 or self.max_change_db <= 0:
            raise ValueError("pilot_symbols must be >= 1, target_db and base_db >= 0, max_change_db > 0")
        if self.embed_passes < 1:
            raise ValueError("embed_passes must be >= 1")
        if not 0 < self.resynthesis_gain <= 2:
            raise ValueError("resynthesis_gain must be in (0, 2]")
        column = self.frames_per_tile * self.hop_samples
        if self.search_step_samples < 1 or column % self.search_step_samples:
            raise ValueError("search_step_samples must divide the column length")
        if self.refine_step_samples < 1:
            raise ValueError("refine_step_samples must be >= 1")
        if self.window_s <= 0 or self.window_hop_s <= 0:
            raise ValueError("window_s and window_hop_s must be positive")
        if not 0 < self.localise_alpha < 1:
            raise ValueError("localise_alpha must be in (0, 1)")
        if self.max_boost_db < 0:
            raise ValueError("max_boost_db must be >= 0")

    @property
    def hop_samples(self) -> int:
        return self.frame_samples // 2

    @property
    def first_bin(self) -> int:
        return math.ceil(self.band_low_hz * self.frame_samples / SAMPLE_RATE_HZ)

    @property
    def band_count(self) -> int:
        last_bin = math.floor(self.band_high_hz * self.frame_samples / SAMPLE_RATE_HZ)
        return (last_bin - self.first_bin) // self.bins_per_band

    @property
    def column_samples(self) -> int:
        return self.frames_per_tile * self.hop_samples

    @property
    def period_columns(self) -> int:
        return self.segment_columns * self.segments_per_period

    @property
    def symbols_per_period(self) -> int:
        return self.pilot_symbols + ecc.CODED_BITS


class _Layout:
    """The keyed pattern of one period: which symbol owns each tile and the tile's ±1 chip.

    Arrays are (period_columns, band_count). Symbols 0..pilot_symbols-1 are pilots (value +1); the rest carry the
    coded bits in order. Each symbol owns a block of adjacent bands over ``columns_per_symbol`` adjacent columns,
    and its chips form a checkerboard (from a keyed first sign): alternating along frequency, because the
    detector's feature compares a tile with its frequency neighbours and so sees an alternating change twice; and
    alternating along time, so that the host's own structure across frequency (voiced harmonics, formants), which
    barely changes from one 16 ms column to the next, cancels out of the symbol's correlation. (Measured with
    32 ms tiles on 24 espeak clips: keyed random chips read the payload on 75 % of clips without attack, the
    checkerboard on all.) Which block a symbol gets is a keyed permutation, so neighbouring coded bits lie far apart
    in time (interleaving against bursts such as pauses).
    """

    def __init__(self, key: WatermarkKey, options: WatermarkOptions) -> None:
        rng = np.random.default_rng(key.seed("layout"))
        columns, bands = options.period_columns, options.band_count
        blocks, span = options.blocks_per_column, options.columns_per_symbol
        block_of_band = np.arange(bands) * blocks // bands
        slot_symbols = rng.permutation(options.symbols_per_period).reshape(columns // span, blocks)
        first_sign = rng.choice(np.array([-1.0, 1.0]), size=(columns // span, blocks))
        group_of_column = np.arange(columns) // span
        self.symbols = slot_symbols[group_of_column][:, block_of_band]
        checkerboard = np.where((np.arange(columns)[:, None] + np.arange(bands)) % 2, -1.0, 1.0)
        self.chips = first_sign[group_of_column][:, block_of_band] * checkerboard
        #: Pattern row (first column in the period) of each symbol.
        self.symbol_rows = np.empty(options.symbols_per_period, dtype=np.int64)
        self.symbol_rows[slot_symbols] = (np.arange(columns // span) * span)[:, None]
        #: First band of each block, the block of each symbol, and the chip of each symbol's first tile divided by
        #: the checkerboard's (-1) ** band: a symbol's chip at column offset dt and band b is
        #: ``symbol_signs * (-1) ** (dt + b)``, which lets the detector correlate per block instead of per tile.
        self.block_starts = np.flatnonzero(np.diff(block_of_band, prepend=-1))
        self.symbol_blocks = np.empty(options.symbols_per_period, dtype=np.int64)
        self.symbol_blocks[slot_symbols] = np.arange(blocks)
        self.symbol_signs = np.empty(options.symbols_per_period)
        first_row_sign = np.where(np.arange(columns // span) * span % 2, -1.0, 1.0)
        self.symbol_signs[slot_symbols] = first_sign * first_row_sign[:, None]
        self.pilot_symbols = options.pilot_symbols
        self.span = span

    def symbol_values(self, codeword: np.ndarray) -> np.ndarray:
        """±1 value of every symbol: pilots +1, then the codeword."""
        return np.concatenate([np.ones(self.pilot_symbols), codeword])


class _TileAnalyzer:
    """STFT and tile log energies shared by the embedder and the detector (the two must measure alike)."""

    def __init__(self, options: WatermarkOptions) -> None:
        self.options = options
        n = options.frame_samples
        self.window = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n))  # periodic; squares sum to 1
        self.bins = slice(options.first_bin, options.first_bin + options.band_count * options.bins_per_band)
        # Mean power per bin and frame of white noise at floor_dbfs RMS through this window.
        self.floor_power = 10 ** (options.floor_dbfs / 10) * float(np.sum(self.window**2))

    def spectra(self, samples: np.ndarray, hop: int) -> np.ndarray:
        """Complex STFT (..., frames, bins) of every full frame starting at multiples of ``hop`` of the last axis.

        Float32 samples give a complex64 STFT: several times faster than float64, and precise enough for log
        energies and for a mark 25 dB below the host.
        """
        n = self.options.frame_samples
        count = (samples.shape[-1] - n) // hop + 1
        if count <= 0:
            return np.zeros((*samples.shape[:-1], 0, n // 2 + 1), dtype=np.complex128)
        step = samples.strides[-1]
        frames = np.lib.stride_tricks.as_strided(
            samples, shape=(*samples.shape[:-1], count, n), strides=(*samples.strides[:-1], step * hop, step)
        )
        return scipy.fft.rfft(frames * self.window.astype(samples.dtype, copy=False), axis=-1)

    def band_power(self, spectra: np.ndarray) -> np.ndarray:
        """Mean power per (..., frame, band) over the band's bins."""
        power = np.abs(spectra[..., self.bins]) ** 2
        return power.reshape(*power.shape[:-1], self.options.band_count, self.options.bins_per_band).mean(axis=-1)

    def log_energy(self, tile_power: np.ndarray) -> np.ndarray:
        return np.log(tile_power + self.floor_power)

    def detrend(self, energy: np.ndarray) -> np.ndarray:
        """Tile log energy minus the mean of its two neighbours in frequency, clipped.

        ``energy`` is (columns, bands); band edges are replicated. Removes loudness and the spectral envelope's
        slope; comparing within one column (not across time) keeps speech onsets out of the feature, which
        measured about 3 dB median spread on speech against 5 dB for time or time-frequency neighbourhoods.
        """
        padded = np.concatenate([energy[..., :1], energy, energy[..., -1:]], axis=-1)
        limit = self.options.feature_clip_db * _LN_PER_DB
        return np.clip(energy - 0.5 * (padded[..., :-2] + padded[..., 2:]), -limit, limit)


class StreamingEmbedder:
    """Marks one stream chunk by chunk; the concatenated output equals :meth:`SpreadSpectrumWatermarker.embed`.

    ``push`` accepts any chunk size and returns the samples that are final so far; output lags input by at most one
    segment plus three hops (about 0.15 s with the default options) because a segment is marked as one batch, and
    a symbol's strength is chosen from what its host already carries. ``finish`` returns the rest. State is
    bounded: about two segments of samples (beyond the chunk being pushed) and the unused energy budget.
    """

    def __init__(self, layout: _Layout, analyzer: _TileAnalyzer, options: WatermarkOptions, payload: int) -> None:
        self._layout = layout
        self._analyzer = analyzer
        self._options = options
        self._values = layout.symbol_values(ecc.encode_payload(payload))
        hop, column = options.hop_samples, options.column_samples
        # Host samples in "padded" coordinates: the signal starts at index hop, so frame m covers [m*hop, m*hop+2*hop).
        # The buffer starts one column before index 0 (silence), so the first segment has a column before it.
        self._host = np.zeros(column + hop, dtype=np.float32)
        self._host_start = -column
        self._overlap = np.zeros(hop, dtype=np.float32)  # synthesis tail waiting for the next frame
        self._carried_energy = 0.0  # mark energy budget earlier segments left unused
        self._segment = 0
        self._pad_left = hop
        self._received = 0
        self._emitted = 0
        self._finished = False

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Add host samples (16 kHz mono float); return the marked samples that are final so far."""
        if self._finished:
            raise WatermarkError("push() after finish()")
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        self._host = np.concatenate([self._host, chunk])
        self._received += chunk.size
        return self._drain(final=False)

    def finish(self) -> np.ndarray:
        """Flush: mark the remaining samples (as if silence followed) and return them."""
        if self._finished:
            raise WatermarkError("finish() called twice")
        self._finished = True
        return self._drain(final=True)

    def _drain(self, final: bool) -> np.ndarray:
        options = self._options
        segment_samples = options.segment_columns * options.column_samples
        tail = options.column_samples + options.hop_samples  # context a segment needs after its own samples
        available = self._host_start + self._host.size
        ready = max(0, (available - tail) // segment_samples - self._segment)
        if final:
            # Padded index hop is signal sample 0: mark segments until the output covers every sample received,
            # as if silence followed.
            end = self._received + options.hop_samples
            ready = max(0, -(-end // segment_samples) - self._segment)
            needed = (self._segment + ready) * segment_samples + tail
            if needed > available:
                self._host = np.concatenate([self._host, np.zeros(needed - available, dtype=np.float32)])
        out = self._embed_segments(ready) if ready else np.zeros(0)
        skipped = min(self._pad_left, out.size)  # the leading pad before the signal
        self._pad_left -= skipped
        out = out[skipped:][: self._received - self._emitted]
        self._emitted += out.size
        return out.astype(np.float32)

    def _embed_segments(self, count: int) -> np.ndarray:
        """Mark the next ``count`` segments as one batch; return their final output samples (contiguous).

        Each segment is marked from its own host samples plus one column of context on each side, so segments are
        independent and a batch gives the same samples as one segment at a time (streaming == whole signal).
        Closed loop: after each pass the segments are resynthesised and measured again, and symbols still short of
        the target get more. Overlap-add smears a tile's change into its neighbours, so an open-loop change lands
        at only about 60 % of its size and the host's own correlation is never fully cancelled.
        """
        options, analyzer = self._options, self._analyzer
        hop, column, columns = options.hop_samples, options.column_samples, options.segment_columns
        segment_samples = columns * column
        first = self._segment * segment_samples - column - self._host_start
        length = (columns + 2) * column + hop
        step = self._host.strides[0]
        # Host samples of each segment's frames plus one column of context on each side: (count, length).
        host = np.lib.stride_tricks.as_strided(
            self._host[first:], shape=(count, length), strides=(step * segment_samples, step)
        )
        spectra = analyzer.spectra(host, hop)  # (count, frames, bins)
        host_power = self._tile_power(spectra)  # (count, columns + 2, bands)
        own_power = host_power[:, 1:-1]
        local_power = _neighbourhood_mean(host_power)[:, 1:-1]
        own_frames = slice(options.frames_per_tile, options.frames_per_tile * (columns + 1))
        symbols, signs = self._segment_pattern(count)
        changes_db = np.zeros_like(own_power)
        features = analyzer.detrend(analyzer.log_energy(own_power))
        for index in range(options.embed_passes):
            changes_db = self._tile_changes_db(changes_db, features, own_power, local_power, symbols, signs)
            if index + 1 < options.embed_passes:
                marked = _overlap_add(self._synthesise(spectra, changes_db), hop)
                features = analyzer.detrend(
                    analyzer.log_energy(self._tile_power(analyzer.spectra(marked, hop)[:, own_frames]))
                )
        changes_db = self._within_budget(changes_db, own_power, spectra[:, own_frames], symbols)
        own = _overlap_add(self._synthesise(spectra, changes_db)[:, own_frames], hop)  # (count, samples + hop)
        out = own[:, :segment_samples].copy()
        # Each segment's synthesis tail overlaps the start of the next one.
        out[0, :hop] += self._overlap
        out[1:, :hop] += own[:-1, segment_samples:]
        self._overlap = own[-1, segment_samples:].copy()
        out[host[:, column : column + segment_samples] == 0.0] = 0.0  # digital silence stays exactly silent
        self._segment += count
        # Keep one column before the next segment as context, drop the rest.
        keep_from = self._segment * segment_samples - column - self._host_start
        self._host = self._host[keep_from:]
        self._host_start += keep_from
        return out.reshape(-1)

    def _segment_pattern(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Symbol index and chip x symbol value of every tile of the next ``count`` segments, (count, columns, bands).

        Symbol indices are offset by segment (segment k uses k * symbols_per_period + symbol) so that per-symbol
        sums over a batch never mix segments.
        """
        options, layout = self._options, self._layout
        segments = self._segment + np.arange(count)
        rows = (segments % options.segments_per_period)[:, None] * options.segment_columns
        rows = rows + np.arange(options.segment_columns)
        symbols = layout.symbols[rows]
        signs = layout.chips[rows] * self._values[symbols]
        return symbols + options.symbols_per_period * np.arange(count)[:, None, None], signs

    def _within_budget(
        self, changes_db: np.ndarray, own_power: np.ndarray, own_spectra: np.ndarray, symbols: np.ndarray
    ) -> np.ndarray:
        """Bring each segment's mark energy within the segment's budget.

        Over budget, the symbols whose changes cost the most energy are given up first (left as the host has
        them, to the error-correcting code): scaling every change down instead would leave many symbols half
        way, short of their target and often still of the wrong sign. Whatever remains over budget is scaled.

        A segment's budget is max_mark_db below its own energy, plus what earlier segments left unused (at most
        max_boost_db above its own budget, so a quiet segment after a loud one stays quiet). The mark never
        spends more than the stream has been granted so far, so every prefix of the signal, and the whole signal,
        has an SNR of at least -max_mark_db. The carried energy is the only state (one number per stream).
        """
        options = self._options
        host_energy = np.sum(np.abs(own_spectra.astype(np.complex128)) ** 2, axis=(1, 2))
        budget = host_energy * 10 ** (options.max_mark_db / 10)
        ceiling = budget * 10 ** (options.max_boost_db / 10)
        tile_bins = options.frames_per_tile * options.bins_per_band
        power = own_power.astype(np.float64) * tile_bins
        changes_db = changes_db.astype(np.float64)
        for index in range(changes_db.shape[0]):
            allowed = min(budget[index] + self._carried_energy, ceiling[index])
            change = changes_db[index]
            tile_energy = power[index] * np.expm1(change * (_LN_PER_DB / 2)) ** 2
            mark_energy = float(np.sum(tile_energy))
            if mark_energy > allowed:
                owners = symbols[index].ravel()
                symbol_energy = np.bincount(owners, tile_energy.ravel(), minlength=int(owners.max()) + 1)
                order = np.argsort(-symbol_energy, kind="stable")
                remaining = mark_energy - np.cumsum(symbol_energy[order])
                dropped = order[: int(np.searchsorted(-remaining, -allowed)) + 1]
                change = np.where(np.isin(symbols[index], dropped), 0.0, change)
                mark_energy = float(np.sum(power[index] * np.expm1(change * (_LN_PER_DB / 2)) ** 2))
            for _ in range(2):  # energy grows about as the square of the change; a second step corrects the rest
                if mark_energy <= allowed:
                    break
                change = change * math.sqrt(allowed / mark_energy)
                mark_energy = float(np.sum(power[index] * np.expm1(change * (_LN_PER_DB / 2)) ** 2))
            changes_db[index] = change
            self._carried_energy = max(0.0, self._carried_energy + budget[index] - mark_energy)
        return changes_db

    def _tile_power(self, spectra: np.ndarray) -> np.ndarray:
        """Mean power per (segment, column, band) from (segments, frames, bins) spectra, frames a multiple of a
        column."""
        options = self._options
        power = self._analyzer.band_power(spectra)
        return power.reshape(power.shape[0], -1, options.frames_per_tile, options.band_count).mean(axis=2)

    def _synthesise(self, spectra: np.ndarray, changes_db: np.ndarray) -> np.ndarray:
        """Windowed time-domain frames of the local spectra with the segments' tiles scaled (context unchanged)."""
        options, analyzer = self._options, self._analyzer
        scaled = spectra.copy()
        own = scaled[:, options.frames_per_tile : -options.frames_per_tile]
        amplitude = np.exp(changes_db * (_LN_PER_DB / 2))  # dB of power -> amplitude factor
        per_frame = np.repeat(amplitude, options.frames_per_tile, axis=1)
        own[:, :, analyzer.bins] *= np.repeat(per_frame, options.bins_per_band, axis=2)
        return scipy.fft.irfft(scaled, n=options.frame_samples, axis=-1) * analyzer.window.astype(np.float32)

    def _tile_changes_db(
        self, changes_db: np.ndarray, features: np.ndarray, own_power: np.ndarray, local_power: np.ndarray,
        symbols: np.ndarray, signs: np.ndarray,
    ) -> np.ndarray:  # fmt: skip
        """Updated energy change (dB) of each tile, (segments, segment_columns, bands).

        Each symbol's correlation (sum over its tiles of chip x value x feature, features measured on the current
        marked signal) is raised to target_db per tile where it falls short; the shortfall goes preferably to
        tiles quieter than their neighbourhood, whose louder neighbours mask the change (and which cost the least
        energy per dB). ``symbols`` and ``signs`` come from :meth:`_segment_pattern`.
        """
        options = self._options
        active = own_power >= self._analyzer.floor_power
        # Tiles that cannot move the clipped feature any more (at the change limit, or clipped) get no share.
        limit = options.feature_clip_db * _LN_PER_DB * 0.999
        movable = (signs * changes_db < options.max_change_db * 0.999) & (np.abs(features) < limit)
        room = np.where(active & movable, (local_power / np.maximum(own_power, 1e-30)) ** options.masking_exponent, 0)
        room = np.minimum(room, 10.0)
        count = options.symbols_per_period * symbols.shape[0]
        flat = symbols.ravel()
        projection = np.bincount(flat, (signs * features * active).ravel() / _LN_PER_DB, minlength=count)
        tiles = np.bincount(flat, active.ravel(), minlength=count)
        room_sum = np.bincount(flat, room.ravel(), minlength=count)
        shortfall = np.maximum(0.0, options.target_db * tiles - projection)
        share = np.divide(room, room_sum[symbols], out=np.zeros_like(room), where=room_sum[symbols] > 0)
        change = signs * shortfall[symbols] * share / options.resynthesis_gain
        if not changes_db.any():
            change += signs * np.where(active, options.base_db, 0.0)
        return np.clip(changes_db + change, -options.max_change_db, options.max_change_db)


def _overlap_add(frames: np.ndarray, hop: int) -> np.ndarray:
    """Overlap-add (..., frames, 2 * hop) at 50 % overlap; the first and last hop lack a partner frame."""
    lead = frames.shape[:-2]
    out = np.zeros((*lead, (frames.shape[-2] + 1) * hop), dtype=frames.dtype)
    out[..., :-hop] += frames[..., :hop].reshape(*lead, -1)
    out[..., hop:] += frames[..., hop:].reshape(*lead, -1)
    return out


def _neighbourhood_mean(power: np.ndarray) -> np.ndarray:
    """Mean over each tile's 3x3 neighbourhood in (columns, bands), the last two axes (edges replicated): a
    stand-in for the masking threshold."""
    padded = np.pad(power, [(0, 0)] * (power.ndim - 2) + [(1, 1), (1, 1)], mode="edge")
    rows, cols = power.shape[-2:]
    neighbours = (padded[..., 1 + dt : 1 + dt + rows, 1 + db : 1 + db + cols] for dt in (-1, 0, 1) for db in (-1, 0, 1))
    return sum(neighbours) / 9


@dataclass(frozen=True)
class _Grid:
    """Tile features of an excerpt on one candidate column grid."""

    #: Sample of the excerpt where the first column starts.
    start: int
    #: De-trended log energies (columns, bands) times each tile's weight (the fraction of its power above the
    #: band's noise floor), zero where the tile is not used.
    features: np.ndarray
    #: 1.0 where the tile is loud enough above the noise floor to be used, else 0.0.
    mask: np.ndarray


class _Detector:
    """Finds the period's offset from the pilots, decodes the payload and scores windows for localisation."""

    def __init__(self, layout: _Layout, analyzer: _TileAnalyzer, options: WatermarkOptions) -> None:
        self._layout = layout
        self._analyzer = analyzer
        self._options = options

    def detect(self, audio: np.ndarray) -> WatermarkResult:
        """``audio``: 16 kHz mono samples."""
        options, layout, analyzer = self._options, self._layout, self._analyzer
        audio = np.asarray(audio, dtype=np.float32)
        step = options.search_step_samples
        fine_power = analyzer.band_power(analyzer.spectra(audio, step))
        per_hop = options.hop_samples // step
        candidates = [self._grid(fine_power[offset::per_hop], offset * step) for offset in range(per_hop)]
        # A column is two hops: each hop-spaced frame series holds two grids (even and odd frame pairs).
        grids = [grid for pair in candidates for grid in pair if grid.features.shape[0] >= 2]
        if not grids:
            return WatermarkResult(detected=False, payload=None, score=0.0, p_value=1.0)
        found = [self._instances(grid) for grid in grids]
        # Refine the best grid's offset by halving steps down to refine_step_samples.
        top = max(found, key=lambda item: item.best_score)
        delta = step // 2
        while delta >= max(1, options.refine_step_samples):
            for start in (top.grid.start - delta, top.grid.start + delta):
                if start < 0:
                    continue
                power = analyzer.band_power(analyzer.spectra(audio[start:], options.hop_samples))
                refined = self._grid(power, start)[0]
                if refined.features.shape[0] >= 2:
                    found.append(self._instances(refined))
            top = max(found, key=lambda item: item.best_score)
            delta //= 2
        pilot_score = max(item.best_score for item in found)
        p_value = min(1.0, len(found) * options.period_columns * float(ndtr(-pilot_score)))
        # Decode the strongest few placements; one whose payload passes the CRC is scored on every symbol.
        candidates = sorted(
            ((float(item.pilot_scores[phase]), phase, item) for item in found for phase in item.top_phases()),
            key=lambda candidate: candidate[0],
            reverse=True,
        )[: options.decode_candidates]
        softs = [item.aligned(candidate_phase)[0] for _, candidate_phase, item in candidates]
        coded = np.stack([soft.sum(axis=0)[layout.pilot_symbols :] for soft in softs])
        decoded_all, tried = ecc.decode_payloads(coded), len(candidates)
        if p_value <= options.list_decode_p and all(decoded is None for decoded, _ in decoded_all):
            # The pilots suggest the mark, so a list of likely decodes may be searched for one the CRC accepts.
            decoded_all = ecc.decode_payloads(coded, options.decode_list_size)
            tried *= options.decode_list_size
        # Without a valid payload, windows are scored against the best placement's nearest codeword: mostly right
        # where the mark is, and far stronger evidence for localisation than the pilots alone.
        score, phase, best, payload = candidates[0][0], candidates[0][1], candidates[0][2], None
        values = layout.symbol_values(decoded_all[0][1])
        for (_, candidate_phase, item), soft, (decoded, codeword) in zip(candidates, softs, decoded_all, strict=True):
            if decoded is None:
                continue
            symbol_values = layout.symbol_values(codeword)
            decoded_score = _t_score(soft * symbol_values)
            if payload is None or decoded_score > score:
                score, phase, best, payload, values = decoded_score, candidate_phase, item, decoded, symbol_values
        if payload is not None:  # a random decode passes the CRC with probability 2**-CRC_BITS
            p_value = min(p_value, tried * 2.0**-ecc.CRC_BITS)
        detected = score >= options.detect_z
        windows, marked_s = self._localise(best, phase, values, detected)
        return WatermarkResult(
            detected=detected,
            payload=payload if detected else None,
            score=score,
            p_value=p_value,
            windows=windows,
            marked_s=marked_s,
        )

    def _grid(self, hop_power: np.ndarray, start: int) -> tuple[_Grid, _Grid]:
        """The two column grids (frame pairs starting at even and odd frames) of hop-spaced band powers."""
        options, analyzer = self._options, self._analyzer
        tile = options.frames_per_tile
        grids = []
        for parity in range(tile):
            frames = hop_power[parity:]
            columns = frames.shape[0] // tile
            power = frames[: columns * tile].reshape(columns, tile, options.band_count).mean(axis=1)
            features = analyzer.detrend(analyzer.log_energy(power)) if columns else power
            # The band's noise floor: its 10th percentile over time (np.partition: far cheaper than np.percentile).
            rank = (columns - 1) // 10
            noise = np.partition(power, rank, axis=0)[rank] if columns else np.zeros(options.band_count)
            floor = np.maximum(analyzer.floor_power, noise * 10 ** (options.detector_min_snr_db / 10))
            mask = (power >= floor).astype(np.float64)
            weight = np.clip(1.0 - noise / np.maximum(power, 1e-30), 0.0, 1.0)
            grids.append(_Grid(start + parity * options.hop_samples, features * mask * weight, mask))
        return grids[0], grids[1]

    def _instances(self, grid: _Grid) -> _Instances:
        """Every symbol's normalised correlation as if it sat in each column of the excerpt."""
        options, layout = self._options, self._layout
        span, rows = layout.span, grid.features.shape[0]
        # Chips are a checkerboard within each block: sum each block's features with alternating signs along
        # frequency, then over the columns a symbol spans with alternating signs. Symbols sharing a block differ only
        # by sign, so everything up to the clipping is computed per block (10 blocks, not 150 symbols).
        alternating = np.where(np.arange(options.band_count) % 2, -1.0, 1.0)
        per_block = np.add.reduceat(grid.features * alternating, layout.block_starts, axis=1)
        per_block_used = np.add.reduceat(grid.mask, layout.block_starts, axis=1)
        pad = np.zeros((span - 1, per_block.shape[1]))
        per_block, per_block_used = np.concatenate([per_block, pad]), np.concatenate([per_block_used, pad])
        # A symbol starting at column c covers columns c..c+span-1 (missing columns past the end count as unused).
        projection = sum((-1) ** dt * per_block[dt : dt + rows] for dt in range(span))
        used = sum(per_block_used[dt : dt + rows] for dt in range(span))
        enough = used >= options.min_tiles_per_symbol
        # In units of the embedding target over the usable tiles, scaled by sqrt(usable / all tiles) of the symbol:
        # an instance that lost tiles (buried by noise, or cut off at the excerpt's ends) holds less evidence.
        # Between the mean over usable tiles (every instance counts fully) and the sum (the likelihood ratio if
        # every tile were equally noisy); on the benchmark's clips it read one more payload of 50 from 2-second
        # excerpts and none fewer under any attack (on another 50 clips: the same).
        tiles = np.diff(np.append(layout.block_starts, options.band_count)) * span
        target = options.target_db * _LN_PER_DB * np.sqrt(tiles * np.where(enough, used, 1.0))
        normalised = np.where(enough, np.clip(projection / target, -1.0, 1.0), 0.0)
        return _Instances(grid, normalised[:, layout.symbol_blocks] * layout.symbol_signs, layout, options)

    def _evidence(self, found: _Instances, phase: int, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every usable symbol instance's correlation with its expected sign, and the instance's middle (seconds),
        in time order."""
        options = self._options
        soft, start_column = found.aligned(phase)
        used = soft != 0.0
        column_s = options.column_samples / SAMPLE_RATE_HZ
        middles_s = found.grid.start / SAMPLE_RATE_HZ + column_s * (start_column + 0.5 * self._layout.span)
        middles_s = np.broadcast_to(middles_s, soft.shape)[used]
        order = np.argsort(middles_s, kind="stable")
        return (soft * values)[used][order], middles_s[order]

    def _localise(
        self, found: _Instances, phase: int, values: np.ndarray, detected: bool
    ) -> tuple[list[WindowScore], list[tuple[float, float]]]:
        """Window scores for display, and the marked ranges (none unless the mark was detected)."""
        options = self._options
        evidence, middles_s = self._evidence(found, phase, values)
        end_s = (found.grid.start + options.column_samples * found.grid.features.shape[0]) / SAMPLE_RATE_HZ
        starts_s = np.arange(max(1, math.ceil((end_s - options.window_s) / options.window_hop_s) + 1))
        starts_s = starts_s * options.window_hop_s
        in_window = [(middles_s >= lo) & (middles_s < lo + options.window_s) for lo in starts_s]
        window_z = [_t_score(evidence[inside]) for inside in in_window]
        marked_s = self._marked_ranges(evidence, middles_s, in_window, window_z) if detected else []
        windows = [
            WindowScore(
                float(lo), float(lo) + options.window_s, z,
                any(start <= lo + options.window_s / 2 < end for start, end in marked_s),
            )
            for lo, z in zip(starts_s, window_z, strict=True)
        ]  # fmt: skip
        return windows, marked_s

    def _marked_ranges(
        self, evidence: np.ndarray, middles_s: np.ndarray, in_window: list[np.ndarray], window_z: list[float]
    ) -> list[tuple[float, float]]:
        """The stretches that carry the mark: segments of symbol instances with a high summed log-likelihood ratio.

        An instance's correlation s with its expected sign is modelled as Laplace-distributed around mu where the
        mark is and around 0 where it is not, with one scale b: unmarked speech gives occasional instances near
        ±1, which a Gaussian model would let pull a boundary into unmarked speech. Its log-likelihood ratio is
        (|s| - |s - mu|) / b: linear between 0 and mu, constant beyond. mu is the mean over the windows that
        clearly carry the mark, b the mean distance from mu there. Silence holds no instance and so
        neither extends nor breaks a stretch. In unmarked audio the best segment's sum exceeds h with probability
        about n exp(-h) for n instances, since the scores are log-likelihood ratios (Karlin & Altschul, PNAS
        87(6), 1990); h = ln(n / localise_alpha). Boundaries are found to one instance (128 ms) rather than to a
        window. On 400 spliced clips (bench/watermark.py, 8 seeds) both edges lie within 0.3 s on 398 and the worst is
        0.52 s off (unmarked speech just before a pause before the marked clip); window thresholds with
        hysteresis put 2 of 300 edges 0.75-1.25 s off.
        """
        options, span_s = self._options, self._layout.span * self._options.column_samples / SAMPLE_RATE_HZ
        if evidence.size < 2:
            return []
        confident = [inside for inside, z in zip(in_window, window_z, strict=True) if z >= options.window_z]
        marked = evidence[np.logical_or.reduce(confident)] if confident else evidence
        mu = float(np.mean(marked))
        if mu <= 0:
            return []
        scale = max(float(np.mean(np.abs(marked - mu))), 1e-3)
        ratios = (np.abs(evidence) - np.abs(evidence - mu)) / scale
        threshold = math.log(evidence.size / options.localise_alpha)
        return [
            (max(0.0, float(middles_s[first]) - span_s / 2), float(middles_s[last - 1]) + span_s / 2)
            for first, last in _maximal_segments(ratios, threshold)
        ]


def _maximal_segments(scores: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Disjoint index ranges [first, last) whose scores sum to at least ``threshold``, in order.

    The best-scoring segment is taken (Kadane's maximum subarray, on prefix sums), then the parts to its left
    and right are searched the same way.
    """
    found, pending = [], [(0, scores.size)]
    while pending:
        lo, hi = pending.pop()
        if hi - lo < 1:
            continue
        prefix = np.concatenate([[0.0], np.cumsum(scores[lo:hi])])
        gain = prefix - np.minimum.accumulate(prefix)
        last = int(np.argmax(gain))
        if gain[last] < threshold:
            continue
        first = int(np.argmin(prefix[: last + 1]))
        found.append((lo + first, lo + last))
        pending += [(lo, lo + first), (lo + last, hi)]
    return sorted(found)


class _Instances:
    """Normalised per-symbol correlations on one grid, for any placement of the period.

    ``soft[c, k]`` is symbol k's correlation in units of the embedding target (scaled down where tiles were
    unusable, see :meth:`_Detector._instances`), clipped to ±1, if k sat in excerpt column c (0 where too few tiles
    were usable). Clipping bounds what one symbol that the host overwhelmed can do to a decision.
    """

    def __init__(self, grid: _Grid, soft: np.ndarray, layout: _Layout, options: WatermarkOptions) -> None:
        self.grid = grid
        self._soft = soft
        self._layout = layout
        self._options = options
        # Pilot t-scores for every phase at once: gather each pilot's instances for all phases.
        pilots = layout.pilot_symbols
        soft, _ = self._gather(np.arange(options.period_columns)[:, None, None], layout.symbol_rows[:pilots])
        energy = np.sum(soft**2, axis=(1, 2))
        #: Synchronisation t-score of the pilots for every phase.
        self.pilot_scores = np.where(energy > 0, soft.sum(axis=(1, 2)) / np.sqrt(np.maximum(energy, 1e-30)), 0.0)
        self.best_score = float(self.pilot_scores.max())

    def top_phases(self) -> np.ndarray:
        return np.argsort(self.pilot_scores)[::-1][: self._options.decode_candidates]

    def aligned(self, phase: int) -> tuple[np.ndarray, np.ndarray]:
        """Soft values (instances, symbols) with the excerpt's first column on pattern row ``phase``, and the
        excerpt column of each instance; instances outside the excerpt are 0."""
        return self._gather(np.array(phase), self._layout.symbol_rows)

    def _gather(self, phase: np.ndarray, symbol_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        period = self._options.period_columns
        starts = self._soft.shape[0]
        repeats = np.arange(-(-starts // period) + 1)[:, None]
        columns = (symbol_rows - phase) % period + period * repeats  # excerpt column of each instance
        symbols = np.arange(symbol_rows.size)
        soft = np.where(columns < starts, self._soft[np.minimum(columns, starts - 1), symbols], 0.0)
        return soft, columns

    def soft_symbols(self, phase: int) -> np.ndarray:
        """Each symbol's soft values summed over its instances (positive = +1)."""
        return self.aligned(phase)[0].sum(axis=0)


def _t_score(values: np.ndarray) -> float:
    """sum / sqrt(sum of squares): about N(0, 1) for independent zero-mean values of any scale."""
    energy = float(np.sum(values**2))
    return float(np.sum(values)) / math.sqrt(energy) if energy > 0 else 0.0


class SpreadSpectrumWatermarker:
    """The built-in backend (see the module docstring). Holds only the keyed layout; streams hold their own state."""

    def __init__(self, key: WatermarkKey | None = None, options: WatermarkOptions | None = None) -> None:
        self.options = options or WatermarkOptions()
        key = key or WatermarkKey.from_env()
        self._layout = _Layout(key, self.options)
        self._analyzer = _TileAnalyzer(self.options)
        self._detector = _Detector(self._layout, self._analyzer, self.options)

    def __repr__(self) -> str:
        return f"SpreadSpectrumWatermarker(options={self.options!r})"

    def stream(self, payload: int) -> StreamingEmbedder:
        """A streaming embedder for one 16 kHz stream."""
        return StreamingEmbedder(self._layout, self._analyzer, self.options, payload)

    def embed(self, audio: np.ndarray, sample_rate_hz: int, payload: int) -> np.ndarray:
        """Mark mono float audio at any rate; the mark is made at 16 kHz and added to the original samples."""
        audio = mono_float32(audio)
        if sample_rate_hz == SAMPLE_RATE_HZ:
            stream = self.stream(payload)
            return np.concatenate([stream.push(audio), stream.finish()])
        host = resample(audio, sample_rate_hz, SAMPLE_RATE_HZ)
        stream = self.stream(payload)
        mark = np.concatenate([stream.push(host), stream.finish()]) - host
        marked = audio + resample(mark, SAMPLE_RATE_HZ, sample_rate_hz)[: audio.size]
        marked[audio == 0.0] = 0.0
        return marked.astype(np.float32)

    def detect(self, audio: np.ndarray, sample_rate_hz: int) -> WatermarkResult:
        return self._detector.detect(resample(mono_float32(audio), sample_rate_hz, SAMPLE_RATE_HZ))


def mono_float32(audio: np.ndarray) -> np.ndarray:
    """Validate mono float audio (shape (samples,), finite) and return it as float32."""
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise WatermarkError(f"expected mono audio of shape (samples,), got shape {audio.shape}")
    if not np.isfinite(audio).all():
        raise WatermarkError("audio contains NaN or infinite samples")
    return audio.astype(np.float32, copy=False)


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Polyphase resampling with an exact rational ratio (float32 out)."""
    if from_hz <= 0 or to_hz <= 0:
        raise WatermarkError(f"invalid sample rate {from_hz} Hz -> {to_hz} Hz")
    if from_hz == to_hz:
        return samples
    common = gcd(int(from_hz), int(to_hz))
    return resample_poly(samples, to_hz // common, from_hz // common).astype(np.float32)


BACKENDS = ("builtin", "audiowmark", "audioseal")


def create_watermarker(backend: str = "builtin", key: WatermarkKey | None = None) -> Watermarker:
    """The named backend; ``key`` applies to the built-in one (the others bring their own, see their module)."""
    if backend == "builtin":
        return SpreadSpectrumWatermarker(key)
    from safety import watermark_backends  # optional dependencies load only when asked for

    if backend == "audiowmark":
        return watermark_backends.AudiowmarkWatermarker()
    if backend == "audioseal":
        return watermark_backends.AudioSealWatermarker.from_env()
    raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")


def _format_ranges(ranges: list[tuple[float, float]]) -> str:
    return ", ".join(f"{start:.2f}-{end:.2f} s" for start, end in ranges) or "none"


def main(argv: list[str] | None = None) -> int:
    """``python -m safety.watermark detect FILE...``: detection, payload and marked time ranges per file."""
    from engine.audio import AudioError, decode, to_mono

    parser = argparse.ArgumentParser(prog="python -m safety.watermark", description="Parley audio watermark")
    commands = parser.add_subparsers(dest="command", required=True)
    detect = commands.add_parser("detect", help="look for the watermark in audio files (any format ffmpeg reads)")
    detect.add_argument("files", nargs="+", type=Path)
    detect.add_argument("--backend", choices=BACKENDS, default="builtin")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        watermarker = create_watermarker(args.backend)
    except WatermarkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    status = 0
    for path in args.files:
        try:
            samples, rate = decode(path)
            result = watermarker.detect(to_mono(samples), rate)
        except (AudioError, WatermarkError) as e:
            print(f"{path}: error: {e}")
            status = 2
            continue
        if result.detected:
            payload = "unreadable" if result.payload is None else f"0x{result.payload:08x}"
            deployment = (
                ""
                if result.payload is None
                else f" (deployment {result.payload >> 16}, session {result.payload & 0xFFFF})"
            )
            print(f"{path}: watermark detected, score {result.score:.1f}, p-value {result.p_value:.1e}, "
                  f"payload {payload}{deployment}, marked {_format_ranges(result.marked_s)}")  # fmt: skip
        else:
            print(f"{path}: no watermark found (score {result.score:.1f})")
    return status


if __name__ == "__main__":
    sys.exit(main())
