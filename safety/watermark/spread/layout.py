"""The keyed layout of one period and the time-frequency tiles that embedder and detector both measure."""

from __future__ import annotations

import numpy as np
import scipy.fft

from safety.watermark.key import WatermarkKey
from safety.watermark.spread.options import LN_PER_DB, WatermarkOptions


class Layout:
    """The keyed pattern of one period: which symbol owns each tile and the tile's ±1 chip.

    Arrays are (period_columns, band_count). Symbols 0..pilot_symbols-1 are pilots (value +1); the rest carry the
    coded bits in order. Each symbol owns a block of adjacent bands over ``columns_per_symbol`` adjacent columns,
    and its chips form a checkerboard (from a keyed first sign): alternating along frequency, because the
    detector's feature compares a tile with its frequency neighbours and so sees an alternating change twice; and
    alternating along time (every ``chip_run_columns`` columns), so that the host's own structure across frequency
    (voiced harmonics, formants), which barely changes from one 16 ms column to the next, cancels out of the
    symbol's correlation. (Measured with 32 ms tiles on 24 espeak clips: keyed random chips read the payload on 75 %
    of clips without attack, the checkerboard on all.) Which block a symbol gets is a keyed permutation, so
    neighbouring coded bits lie far apart in time (interleaving against bursts such as pauses).
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
        run = options.chip_run_columns
        checkerboard = np.where((np.arange(columns)[:, None] // run + np.arange(bands)) % 2, -1.0, 1.0)
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
        first_row_sign = np.where(np.arange(columns // span) * span // run % 2, -1.0, 1.0)
        self.symbol_signs[slot_symbols] = first_sign * first_row_sign[:, None]
        self.pilot_symbols = options.pilot_symbols
        self.span = span
        #: Sign of the chips at each column offset within a symbol, relative to its first column: (span,).
        self.run_signs = np.where(np.arange(span) // run % 2, -1.0, 1.0)

    def symbol_values(self, codeword: np.ndarray) -> np.ndarray:
        """±1 value of every symbol: pilots +1, then the codeword."""
        return np.concatenate([np.ones(self.pilot_symbols), codeword])


class TileAnalyzer:
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

    def band_power(self, spectra: np.ndarray, frequency_scale: float = 1.0) -> np.ndarray:
        """Mean power per (..., frame, band) over the band's bins.

        ``frequency_scale`` != 1 reads each bin's power at that multiple of its frequency (linear interpolation
        between bins): the tiles of audio whose spectrum was scaled by that factor (a pitch shift) line up with the
        pattern again.
        """
        if frequency_scale == 1.0:
            power = np.abs(spectra[..., self.bins]) ** 2
        else:
            position = np.arange(self.bins.start, self.bins.stop) * frequency_scale
            low = np.minimum(np.floor(position).astype(np.int64), spectra.shape[-1] - 2)
            above = np.clip(position - low, 0.0, 1.0)
            full = np.abs(spectra) ** 2
            power = full[..., low] * (1.0 - above) + full[..., low + 1] * above
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
        limit = self.options.feature_clip_db * LN_PER_DB
        return np.clip(energy - 0.5 * (padded[..., :-2] + padded[..., 2:]), -limit, limit)
