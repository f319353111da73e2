"""Embedding the built-in mark: a streaming embedder whose output equals marking the whole signal at once."""

from __future__ import annotations

import copy
import math

import numpy as np
import scipy.fft

from safety.watermark.interface import WatermarkError
from safety.watermark.spread import ecc
from safety.watermark.spread.layout import Layout, TileAnalyzer
from safety.watermark.spread.options import LN_PER_DB, WatermarkOptions


class StreamingEmbedder:
    """Marks one stream chunk by chunk; the concatenated output equals :meth:`SpreadSpectrumWatermarker.embed`.

    ``push`` accepts any chunk size and returns the samples that are final so far; output lags input by at most one
    segment plus three hops (about 0.15 s with the default options) because a segment is marked as one batch, and
    a symbol's strength is chosen from what its host already carries. ``finish`` returns the rest. State is
    bounded: about two segments of samples (beyond the chunk being pushed) and the unused energy budget.

    Stretches of digital silence cost next to nothing (a segment whose frames are all zero is left silent without
    an STFT, exactly as the full computation would leave it), so an output timeline with long pauses between
    pieces of speech is marked by feeding the pauses in (:meth:`skip_silence`). :meth:`ahead` marks everything
    received at once, for output that cannot wait for the samples that follow it.
    """

    def __init__(self, layout: Layout, analyzer: TileAnalyzer, options: WatermarkOptions, payload: int) -> None:
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

    def skip_silence(self, samples: int) -> np.ndarray:
        """Add ``samples`` of digital silence; returns what became final, like :meth:`push` (zeros in the silence).

        Silent segments are not analysed (see the class docstring), so this costs memory copies, not STFTs.
        """
        if samples < 0:
            raise ValueError("cannot skip a negative number of samples")
        return self.push(np.zeros(samples, dtype=np.float32))

    @property
    def received_samples(self) -> int:
        """Samples pushed (or skipped as silence) so far."""
        return self._received

    def ahead(self) -> tuple[np.ndarray, StreamingEmbedder]:
        """Every received sample not yet returned, marked now as if silence followed, and the stream in which that
        silence has arrived: as many zeros as the last segment's context needs (at most a segment plus a column
        and a hop), after which everything received is final.

        For output that cannot wait for the samples after it: if what follows really starts with that much
        silence, continue with the returned stream and every segment is analysed once; otherwise continue with
        this one, which marks the last segment again with the real samples. The state's arrays are replaced,
        never written in place, so a shallow copy is an independent stream.
        """
        if self._finished:
            raise WatermarkError("ahead() after finish()")
        options = self._options
        end = self._received + options.hop_samples  # padded index just past the last received sample
        boundary = -(-end // options.segment_samples) * options.segment_samples
        zeros = boundary + options.column_samples + options.hop_samples - end
        stream = copy.copy(self)
        rest = stream.skip_silence(zeros)[: self._received - self._emitted]
        return rest, stream

    def finish(self) -> np.ndarray:
        """Flush: mark the remaining samples (as if silence followed) and return them."""
        if self._finished:
            raise WatermarkError("finish() called twice")
        self._finished = True
        return self._drain(final=True)

    def _drain(self, final: bool) -> np.ndarray:
        options = self._options
        segment_samples = options.segment_samples
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
        """Mark the next ``count`` segments; return their final output samples (contiguous).

        Runs of silent segments (every sample their frames cover is zero) give silence and pass their synthesis
        tail on as silence, the same samples the full computation gives, at no cost; the rest are marked in
        batches (:meth:`_mark_segments`).
        """
        options = self._options
        segment_samples = options.segment_samples
        starts = self._segment * segment_samples - self._host_start + segment_samples * np.arange(count)
        nonzero = np.concatenate([[0], np.cumsum(self._host != 0.0)])
        silent = nonzero[starts + segment_samples + options.hop_samples] == nonzero[starts]
        out, index = [], 0
        while index < count:
            run = int(np.argmax(silent[index:] != silent[index])) or count - index
            out.append(self._skip_segments(run) if silent[index] else self._mark_segments(run))
            index += run
        return np.concatenate(out)

    def _skip_segments(self, count: int) -> np.ndarray:
        """Pass ``count`` silent segments: their output and synthesis tail are silence, the energy budget unchanged."""
        self._overlap = np.zeros_like(self._overlap)
        self._advance(count)
        return np.zeros(count * self._options.segment_samples, dtype=np.float32)

    def _advance(self, count: int) -> None:
        """Move past ``count`` segments, keeping one column before the next one as context."""
        options = self._options
        self._segment += count
        keep_from = self._segment * options.segment_samples - options.column_samples - self._host_start
        self._host = self._host[keep_from:]
        self._host_start += keep_from

    def _mark_segments(self, count: int) -> np.ndarray:
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
        features = analyzer.detrend(analyzer.log_energy(own_power))
        candidates = []
        for target_db in (options.target_db, options.fallback_target_db):
            changes_db, current = np.zeros_like(own_power), features
            for index in range(options.embed_passes):
                changes_db = self._tile_changes_db(
                    changes_db, current, own_power, local_power, symbols, signs, target_db
                )
                if index + 1 < options.embed_passes:
                    marked = overlap_add(self._synthesise(spectra, changes_db), hop)
                    current = analyzer.detrend(
                        analyzer.log_energy(self._tile_power(analyzer.spectra(marked, hop)[:, own_frames]))
                    )
            candidates.append(changes_db)
        changes_db = self._within_budget(candidates, own_power, spectra[:, own_frames], symbols)
        own = overlap_add(self._synthesise(spectra, changes_db)[:, own_frames], hop)  # (count, samples + hop)
        out = own[:, :segment_samples].copy()
        # Each segment's synthesis tail overlaps the start of the next one.
        out[0, :hop] += self._overlap
        out[1:, :hop] += own[:-1, segment_samples:]
        self._overlap = own[-1, segment_samples:].copy()
        out[host[:, column : column + segment_samples] == 0.0] = 0.0  # digital silence stays exactly silent
        self._advance(count)
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
        self, candidates: list[np.ndarray], own_power: np.ndarray, own_spectra: np.ndarray, symbols: np.ndarray
    ) -> np.ndarray:
        """Bring each segment's mark energy within the segment's budget.

        ``candidates`` are the segments' changes marked to target_db and to fallback_target_db: each segment takes
        the first that fits its budget, else the last. Over budget, the symbols whose changes cost the most energy
        are given up first (left as the host has them, to the error-correcting code): scaling every change down
        instead would leave many symbols half way, short of their target and often still of the wrong sign.
        Whatever remains over budget is scaled.

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
        changes_db = np.zeros(own_power.shape)
        for index in range(changes_db.shape[0]):
            allowed = min(budget[index] + self._carried_energy, ceiling[index])
            for candidate in candidates:
                change = candidate[index].astype(np.float64)
                tile_energy = power[index] * np.expm1(change * (LN_PER_DB / 2)) ** 2
                mark_energy = float(np.sum(tile_energy))
                if mark_energy <= allowed:
                    break
            if mark_energy > allowed:
                owners = symbols[index].ravel()
                symbol_energy = np.bincount(owners, tile_energy.ravel(), minlength=int(owners.max()) + 1)
                order = np.argsort(-symbol_energy, kind="stable")
                remaining = mark_energy - np.cumsum(symbol_energy[order])
                dropped = order[: int(np.searchsorted(-remaining, -allowed)) + 1]
                change = np.where(np.isin(symbols[index], dropped), 0.0, change)
                mark_energy = float(np.sum(power[index] * np.expm1(change * (LN_PER_DB / 2)) ** 2))
            for _ in range(2):  # energy grows about as the square of the change; a second step corrects the rest
                if mark_energy <= allowed:
                    break
                change = change * math.sqrt(allowed / mark_energy)
                mark_energy = float(np.sum(power[index] * np.expm1(change * (LN_PER_DB / 2)) ** 2))
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
        amplitude = np.exp(changes_db * (LN_PER_DB / 2))  # dB of power -> amplitude factor
        per_frame = np.repeat(amplitude, options.frames_per_tile, axis=1)
        own[:, :, analyzer.bins] *= np.repeat(per_frame, options.bins_per_band, axis=2)
        return scipy.fft.irfft(scaled, n=options.frame_samples, axis=-1) * analyzer.window.astype(np.float32)

    def _tile_changes_db(
        self, changes_db: np.ndarray, features: np.ndarray, own_power: np.ndarray, local_power: np.ndarray,
        symbols: np.ndarray, signs: np.ndarray, target_db: float,
    ) -> np.ndarray:  # fmt: skip
        """Updated energy change (dB) of each tile, (segments, segment_columns, bands).

        Each symbol's correlation (sum over its tiles of chip x value x feature, features measured on the current
        marked signal) is raised to ``target_db`` per tile where it falls short; the shortfall goes preferably to
        tiles quieter than their neighbourhood, whose louder neighbours mask the change (and which cost the least
        energy per dB). ``symbols`` and ``signs`` come from :meth:`_segment_pattern`.
        """
        options = self._options
        active = own_power >= self._analyzer.floor_power
        # Tiles that cannot move the clipped feature any more (at the change limit, or clipped) get no share.
        limit = options.feature_clip_db * LN_PER_DB * 0.999
        movable = (signs * changes_db < options.max_change_db * 0.999) & (np.abs(features) < limit)
        room = np.where(active & movable, (local_power / np.maximum(own_power, 1e-30)) ** options.masking_exponent, 0)
        room = np.minimum(room, 10.0)
        count = options.symbols_per_period * symbols.shape[0]
        flat = symbols.ravel()
        projection = np.bincount(flat, (signs * features * active).ravel() / LN_PER_DB, minlength=count)
        tiles = np.bincount(flat, active.ravel(), minlength=count)
        room_sum = np.bincount(flat, room.ravel(), minlength=count)
        shortfall = np.maximum(0.0, target_db * tiles - projection)
        share = np.divide(room, room_sum[symbols], out=np.zeros_like(room), where=room_sum[symbols] > 0)
        change = signs * shortfall[symbols] * share / options.resynthesis_gain
        if not changes_db.any():
            change += signs * np.where(active, options.base_db, 0.0)
        return np.clip(changes_db + change, -options.max_change_db, options.max_change_db)


def overlap_add(frames: np.ndarray, hop: int) -> np.ndarray:
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
