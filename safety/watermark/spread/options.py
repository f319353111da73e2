"""Options of the built-in spread-spectrum mark: tiles, band, pattern, embedding strength, detection search."""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.audio import SAMPLE_RATE_HZ
from safety.watermark.spread import ecc

#: Natural-log power units per decibel: options are in dB, the tile features in ln(power).
LN_PER_DB = math.log(10.0) / 10.0


@dataclass(frozen=True)
class WatermarkOptions:
    """Every setting of the built-in mark, validated once; embedder and detector must be built from the same."""

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
    #: Adjacent columns that share a chip's sign along time (a divisor of columns_per_symbol with an even quotient,
    #: so that each symbol's chips still sum to zero along time in every band). 1 (a checkerboard) cancels the
    #: host best, but a tempo change (WSOLA) shifts 32 ms grains by ±10 ms against the grid (measured with ffmpeg's
    #: atempo), which flips 16 ms runs: on 20 espeak clips, 2 read tempo ±10 % 18 and 20 of 20 payloads (1: 5 and
    #: 8) and pitch ±6 % all 20 (1: 19 and 11), but white noise at 20 dB 24 of 30 (1: 29) and pink noise at 10 dB
    #: 8 of 20 (1: 10), so the default keeps 1 until the host's interference is cancelled another way.
    chip_run_columns: int = 1
    #: Known symbols per period, used to find the period's start.
    pilot_symbols: int = 42
    #: Correlation each symbol is brought up to, per tile, in dB of tile energy.
    target_db: float = 2.0
    #: Lower target for a segment whose changes at target_db exceed its energy budget. On noise-like hosts (the
    #: tiny model's speech) the budget binds on most segments, and the higher target makes each symbol dearer, so
    #: more symbols were given up whole: measured on 32 tiny-model file translations and 5 spoken texts
    #: (1.9-8.7 s, 4 payloads each), target 2 dB alone read 108 of 148 payloads (expressive outputs 29 of 64),
    #: 1.5 dB everywhere all 148 but fewer under the bench's tempo and pink-noise attacks on espeak clips.
    fallback_target_db: float = 1.5
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

    #: Resynchronising search (when the payload does not decode as the audio is): playback-speed and tempo factors
    #: from time_scale_min to time_scale_max (audiowmark's --detect-speed covers 0.8-1.25), and pitch factors
    #: within ± pitch_scale_max with the tempo kept. 0 < min <= 1 <= max; equal to 1 (and pitch 0) turns it off.
    time_scale_min: float = 0.8
    time_scale_max: float = 1.25
    pitch_scale_max: float = 0.1
    #: Coarse grid steps (relative): time factors on a middle excerpt of coarse_excerpt_s, pitch factors.
    #: Measured on 5 s clips, the payload still decodes with the time factor 0.4 % off and the pitch factor
    #: 1-2 % off, so the coarse steps on a half-length excerpt can be about twice that.
    coarse_time_step: float = 0.016
    coarse_pitch_step: float = 0.02
    coarse_excerpt_s: float = 2.56
    #: The best coarse hypotheses refined on the whole recording by a 3 x 3 grid of these steps.
    fine_candidates: int = 3
    fine_time_step: float = 0.005
    fine_pitch_step: float = 0.008

    def __post_init__(self) -> None:
        if self.frame_samples <= 0 or self.frame_samples % 2:
            raise ValueError("frame_samples must be positive and even")
        if not 0 < self.band_low_hz < self.band_high_hz <= SAMPLE_RATE_HZ / 2:
            raise ValueError("need 0 < band_low_hz < band_high_hz <= 8000")
        if min(self.bins_per_band, self.frames_per_tile, self.segment_columns, self.segments_per_period) < 1:
            raise ValueError("bins_per_band, frames_per_tile, segment_columns and segments_per_period must be >= 1")
        run = self.chip_run_columns
        if run < 1 or self.columns_per_symbol % run or (self.columns_per_symbol // run) % 2:
            raise ValueError("chip_run_columns must divide columns_per_symbol into an even number of runs")
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
        if not 0 <= self.fallback_target_db <= self.target_db:
            raise ValueError("fallback_target_db must lie between 0 and target_db")
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
        if not 0 < self.time_scale_min <= 1 <= self.time_scale_max or not 0 <= self.pitch_scale_max < 1:
            raise ValueError("need 0 < time_scale_min <= 1 <= time_scale_max and 0 <= pitch_scale_max < 1")
        steps = (self.coarse_time_step, self.coarse_pitch_step, self.fine_time_step, self.fine_pitch_step)
        if min(steps) <= 0 or self.coarse_excerpt_s <= 0 or self.fine_candidates < 1:
            raise ValueError("search steps and coarse_excerpt_s must be positive, fine_candidates >= 1")

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
    def segment_samples(self) -> int:
        return self.segment_columns * self.column_samples

    @property
    def period_samples(self) -> int:
        """16 kHz samples after which the pattern repeats (1.92 s with the defaults)."""
        return self.period_columns * self.column_samples

    @property
    def symbols_per_period(self) -> int:
        return self.pilot_symbols + ecc.CODED_BITS
