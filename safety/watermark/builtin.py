"""The built-in backend: keyed spread spectrum in the log energy of time-frequency tiles (16 ms x 125 Hz).

The method, with the papers it follows, is described in :mod:`safety.watermark.spread`.
"""

from __future__ import annotations

import numpy as np

from engine.audio import SAMPLE_RATE_HZ
from safety.watermark.interface import WatermarkResult, mono_float32, resample
from safety.watermark.key import WatermarkKey
from safety.watermark.spread.detect import Detector
from safety.watermark.spread.embed import StreamingEmbedder
from safety.watermark.spread.layout import Layout, TileAnalyzer
from safety.watermark.spread.options import WatermarkOptions


class SpreadSpectrumWatermarker:
    """The built-in backend. Holds only the keyed layout; streams hold their own state."""

    def __init__(self, key: WatermarkKey, options: WatermarkOptions | None = None) -> None:
        self.options = options or WatermarkOptions()
        self.layout = Layout(key, self.options)
        self._analyzer = TileAnalyzer(self.options)
        self._detector = Detector(self.layout, self._analyzer, self.options)

    def __repr__(self) -> str:
        return f"SpreadSpectrumWatermarker(options={self.options!r})"

    @property
    def period_samples(self) -> int:
        return self.options.period_samples

    @property
    def min_payload_s(self) -> float:
        """One period of sound: every symbol of the payload then lies in it once (pieces of one timeline count
        together, see :meth:`.spread.detect.Detector.sounding_samples`)."""
        return self.options.period_samples / SAMPLE_RATE_HZ

    def stream(self, payload: int) -> StreamingEmbedder:
        """A streaming embedder for one 16 kHz stream, starting at its sample 0."""
        return StreamingEmbedder(self.layout, self._analyzer, self.options, payload)

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
