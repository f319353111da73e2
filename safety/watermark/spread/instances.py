"""Per-symbol correlations of an excerpt on one candidate column grid, for every placement of the period."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from safety.watermark.spread.layout import Layout
from safety.watermark.spread.options import WatermarkOptions


@dataclass(frozen=True)
class Grid:
    """Tile features of an excerpt on one candidate column grid."""

    #: Sample of the excerpt where the first column starts.
    start: int
    #: De-trended log energies (columns, bands) times each tile's weight (the fraction of its power above the
    #: band's noise floor), zero where the tile is not used.
    features: np.ndarray
    #: 1.0 where the tile is loud enough above the noise floor to be used, else 0.0.
    mask: np.ndarray


class Instances:
    """Normalised per-symbol correlations on one grid, for any placement of the period.

    ``soft[c, k]`` is symbol k's correlation in units of the embedding target (scaled down where tiles were
    unusable, see :meth:`.detect.Detector.instances`), clipped to ±1, if k sat in excerpt column c (0 where too
    few tiles were usable). Clipping bounds what one symbol that the host overwhelmed can do to a decision.
    """

    def __init__(self, grid: Grid, soft: np.ndarray, layout: Layout, options: WatermarkOptions) -> None:
        self.grid = grid
        self._soft = soft
        self._layout = layout
        self._options = options
        # Pilot t-scores for every phase at once. A pilot's instances for phase p are its excerpt columns
        # congruent to (its pattern row - p) modulo the period, so fold its sums (and sums of squares) over the
        # columns modulo the period once, then read one folded value per pilot and phase: (period, pilots) reads
        # instead of (period, repeats, pilots), the search's largest single cost before.
        pilots, period = layout.pilot_symbols, options.period_columns
        columns = soft.shape[0]
        padded = np.zeros((-(-columns // period) * period, pilots))
        padded[:columns] = soft[:, :pilots]
        folded = padded.reshape(-1, period, pilots)
        index = ((layout.symbol_rows[:pilots] - np.arange(period)[:, None]) % period, np.arange(pilots))
        total = folded.sum(axis=0)[index].sum(axis=1)
        energy = (folded**2).sum(axis=0)[index].sum(axis=1)
        #: Synchronisation t-score of the pilots for every phase.
        self.pilot_scores = np.where(energy > 0, total / np.sqrt(np.maximum(energy, 1e-30)), 0.0)
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


def t_score(values: np.ndarray) -> float:
    """sum / sqrt(sum of squares): about N(0, 1) for independent zero-mean values of any scale."""
    energy = float(np.sum(values**2))
    return float(np.sum(values)) / math.sqrt(energy) if energy > 0 else 0.0
