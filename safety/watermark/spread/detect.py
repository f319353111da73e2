"""Detecting the built-in mark: search the grid offset and the period's phase by the pilots, decode, localise."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import numpy as np
from scipy.special import ndtr

from safety.watermark.interface import WatermarkResult
from safety.watermark.spread import ecc
from safety.watermark.spread.instances import Grid, Instances, t_score
from safety.watermark.spread.layout import Layout, TileAnalyzer
from safety.watermark.spread.localise import Localiser
from safety.watermark.spread.options import LN_PER_DB, WatermarkOptions
from safety.watermark.spread.resync import ResyncSearch


class Detector:
    """Finds the period's offset from the pilots, decodes the payload and scores windows for localisation."""

    def __init__(self, layout: Layout, analyzer: TileAnalyzer, options: WatermarkOptions) -> None:
        self._layout = layout
        self._analyzer = analyzer
        self._options = options
        self._localiser = Localiser(layout, options)
        self._search = ResyncSearch(self, options)

    def detect(self, audio: np.ndarray) -> WatermarkResult:
        """``audio``: 16 kHz mono samples. When the payload does not decode as the audio is, the resynchronising
        search (:mod:`.resync`) looks for it under speed, tempo and pitch changes; the p-value counts every
        hypothesis that search could try."""
        audio = np.asarray(audio, dtype=np.float32)
        found = self.placements(audio)
        if not found:
            return WatermarkResult(detected=False, payload=None, score=0.0, p_value=1.0, too_short=True)
        result = self.decide(found, self.pilot_p(found), self._search.hypotheses)
        if result.payload is None and self._search.hypotheses > 1:
            searched = self._search.search(audio)
            result = searched if searched.payload is not None or searched.score > result.score else result
        if result.payload is None and self.sounding_samples(found) < self._options.period_samples:
            result = dataclasses.replace(result, too_short=True)
        return result

    def sounding_samples(self, found: list[Instances]) -> int:
        """Samples of the strongest placement's columns that hold any usable tile: the sound a payload can live in
        (pauses, digital silence and noise-buried stretches not counted). Pieces of one output marked on its
        timeline share one pattern, so their columns add up: a payload needs one period's worth of them."""
        top = max(found, key=lambda item: item.best_score)
        return int(np.count_nonzero(top.grid.mask.any(axis=1))) * self._options.column_samples

    def pilot_p(self, found: list[Instances]) -> float:
        """Chance that unmarked audio gives pilots this strong on some placement of ``found`` (Bonferroni)."""
        pilot_score = max(item.best_score for item in found)
        return min(1.0, len(found) * self._options.period_columns * float(ndtr(-pilot_score)))

    def placements(self, audio: np.ndarray, frequency_scale: float = 1.0, step: int | None = None) -> list[Instances]:
        """Symbol instances on every candidate column grid: each hop-spaced frame series at search_step_samples
        offsets holds two grids (even and odd frame pairs); the best one's offset is then refined by halving steps
        down to refine_step_samples. Each grid holds every phase of the period (period_columns placements).
        ``frequency_scale``: see :meth:`TileAnalyzer.band_power`; ``step`` (a divisor of the hop) overrides
        search_step_samples, for a coarser and cheaper search."""
        return self.placements_by_scale(audio, (frequency_scale,), step)[0]

    def placements_by_scale(
        self, audio: np.ndarray, frequency_scales: Sequence[float], step: int | None = None
    ) -> list[list[Instances]]:
        """:meth:`placements` for each of ``frequency_scales``, sharing the STFTs: a frequency scale only reads
        the bins differently, so the hypotheses of one time scale cost one STFT per offset, not one each."""
        options, analyzer = self._options, self._analyzer
        step = step or options.search_step_samples
        fine_spectra = analyzer.spectra(audio, step)
        per_hop = options.hop_samples // step

        @functools.cache
        def hop_spectra(start: int) -> np.ndarray:
            return analyzer.spectra(audio[start:], options.hop_samples)

        results = []
        for frequency_scale in frequency_scales:
            fine_power = analyzer.band_power(fine_spectra, frequency_scale)
            candidates = [self._grid(fine_power[offset::per_hop], offset * step) for offset in range(per_hop)]
            grids = [grid for pair in candidates for grid in pair if grid.features.shape[0] >= 2]
            found = [self.instances(grid) for grid in grids]
            results.append(found)
            if not found:
                continue
            top = max(found, key=lambda item: item.best_score)
            delta = step // 2
            while delta >= max(1, options.refine_step_samples):
                for start in (top.grid.start - delta, top.grid.start + delta):
                    if start < 0:
                        continue
                    refined = self._grid(analyzer.band_power(hop_spectra(start), frequency_scale), start)[0]
                    if refined.features.shape[0] >= 2:
                        found.append(self.instances(refined))
                top = max(found, key=lambda item: item.best_score)
                delta //= 2
        return results

    def decide(self, found: list[Instances], p_value: float, hypotheses: int = 1) -> WatermarkResult:
        """Decode the strongest few placements of ``found``; one whose payload passes the CRC is scored on every
        symbol. ``p_value`` is the pilots' over ``found`` (every placement counted, and every hypothesis of the
        stage that chose ``found``), lowered when a CRC passes; the result's p-value is multiplied by
        ``hypotheses``, every time-frequency hypothesis the detector could have tried."""
        options, layout = self._options, self._layout
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
            decoded_score = t_score(soft * symbol_values)
            if payload is None or decoded_score > score:
                score, phase, best, payload, values = decoded_score, candidate_phase, item, decoded, symbol_values
        if payload is not None:  # a random decode passes the CRC with probability 2**-CRC_BITS
            p_value = min(p_value, tried * 2.0**-ecc.CRC_BITS)
        p_value = min(1.0, p_value * hypotheses)
        detected = score >= options.detect_z
        windows, marked_s = self._localiser.localise(best, phase, values, detected)
        return WatermarkResult(
            detected=detected, payload=payload if detected else None, score=score, p_value=p_value,
            windows=windows, marked_s=marked_s,
        )  # fmt: skip

    def _grid(self, hop_power: np.ndarray, start: int) -> tuple[Grid, Grid]:
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
            grids.append(Grid(start + parity * options.hop_samples, features * mask * weight, mask))
        return grids[0], grids[1]

    def instances(self, grid: Grid) -> Instances:
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
        projection = sum(layout.run_signs[dt] * per_block[dt : dt + rows] for dt in range(span))
        used = sum(per_block_used[dt : dt + rows] for dt in range(span))
        enough = used >= options.min_tiles_per_symbol
        # In units of the embedding target over the usable tiles, scaled by sqrt(usable / all tiles) of the symbol:
        # an instance that lost tiles (buried by noise, or cut off at the excerpt's ends) holds less evidence.
        # Between the mean over usable tiles (every instance counts fully) and the sum (the likelihood ratio if
        # every tile were equally noisy); on the benchmark's clips it read one more payload of 50 from 2-second
        # excerpts and none fewer under any attack (on another 50 clips: the same).
        tiles = np.diff(np.append(layout.block_starts, options.band_count)) * span
        target = options.target_db * LN_PER_DB * np.sqrt(tiles * np.where(enough, used, 1.0))
        normalised = np.where(enough, np.clip(projection / target, -1.0, 1.0), 0.0)
        return Instances(grid, normalised[:, layout.symbol_blocks] * layout.symbol_signs, layout, options)
