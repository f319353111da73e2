"""The AudioSeal backend: Meta's neural watermark (San Roman et al., "Proactive detection of voice cloning with
localized watermarking", ICML 2024), when the ``audioseal`` package and its two checkpoints are on local disk.

AudioSeal is not keyed and carries 16 bits, so it keeps the low 16 bits of the payload (the session id) and
reports only those; it gives a per-sample probability, not a p-value (``p_value`` is NaN).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.audio import SAMPLE_RATE_HZ
from safety.watermark.interface import (
    EmbeddingStream,
    PieceByPieceStream,
    WatermarkError,
    WatermarkResult,
    WindowScore,
    merge_windows,
    mono_float32,
    resample,
)

_AUDIOSEAL_BITS = 16


class AudioSealWatermarker:
    """AudioSeal generator and detector loaded from local checkpoints (never downloaded here)."""

    #: AudioSeal marks every sample alike (no repeating pattern to keep in phase).
    period_samples = 0
    #: Every sample carries the 16 bits alike, so a clip the detector finds marked has no length below which the
    #: payload is known to be missing.
    min_payload_s = 0.0

    def __init__(self, generator_checkpoint: Path, detector_checkpoint: Path) -> None:
        try:
            import torch
            from audioseal import AudioSeal
        except ImportError as e:
            raise WatermarkError("AudioSeal needs the 'audioseal' package (pip install audioseal)") from e
        for path in (generator_checkpoint, detector_checkpoint):
            if not Path(path).is_file():
                raise WatermarkError(f"AudioSeal checkpoint not found: {path}")
        self._torch = torch
        self._generator = AudioSeal.load_generator(str(generator_checkpoint), nbits=_AUDIOSEAL_BITS)
        self._detector = AudioSeal.load_detector(str(detector_checkpoint), nbits=_AUDIOSEAL_BITS)

    def stream(self, payload: int) -> EmbeddingStream:
        return PieceByPieceStream(self, payload)

    def embed(self, audio: np.ndarray, sample_rate_hz: int, payload: int) -> np.ndarray:
        torch = self._torch
        host = resample(mono_float32(audio), sample_rate_hz, SAMPLE_RATE_HZ)
        bits = [(payload >> (_AUDIOSEAL_BITS - 1 - i)) & 1 for i in range(_AUDIOSEAL_BITS)]
        with torch.inference_mode():
            wav = torch.from_numpy(np.ascontiguousarray(host))[None, None]
            mark = self._generator.get_watermark(wav, SAMPLE_RATE_HZ, message=torch.tensor([bits]))
        mark_np = mark[0, 0].numpy()
        marked = audio + resample(mark_np, SAMPLE_RATE_HZ, sample_rate_hz)[: audio.size]
        return marked.astype(np.float32)

    def detect(self, audio: np.ndarray, sample_rate_hz: int) -> WatermarkResult:
        torch = self._torch
        host = resample(mono_float32(audio), sample_rate_hz, SAMPLE_RATE_HZ)
        with torch.inference_mode():
            frame_probability, message = self._detector(torch.from_numpy(np.ascontiguousarray(host))[None, None])
        probability = frame_probability[0, 1].numpy()  # per-sample probability that the mark is present
        score = float(probability.mean())
        detected = score > 0.5
        bits = (message[0].numpy() > 0.5).astype(int)
        payload = int("".join(map(str, bits)), 2) if detected else None
        window = SAMPLE_RATE_HZ // 2
        windows = [
            WindowScore(start / SAMPLE_RATE_HZ, (start + window) / SAMPLE_RATE_HZ, p, detected and p > 0.5)
            for start in range(0, max(1, probability.size - window + 1), window // 2)
            for p in [float(probability[start : start + window].mean())]
        ]
        return WatermarkResult(
            detected=detected, payload=payload, score=score, p_value=float("nan"), windows=windows,
            marked_s=merge_windows(windows),
        )  # fmt: skip
