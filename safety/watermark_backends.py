"""External watermark backends behind :class:`safety.watermark.Watermarker`: audiowmark and AudioSeal.

Both are optional. ``audiowmark`` (the command-line tool) is for long recordings where its 128-bit, minutes-scale
mark is the user's choice; AudioSeal (Meta's neural watermark, San Roman et al., ICML 2024) runs when the
``audioseal`` package and its two checkpoints are on local disk. Neither reads ``PARLEY_WATERMARK_KEY``:
audiowmark takes its own key file, AudioSeal is not keyed. AudioSeal carries 16 bits, so it keeps the low 16 bits
of the payload (the session id) and reports only those.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from safety.watermark import (
    SAMPLE_RATE_HZ,
    WatermarkError,
    WatermarkResult,
    WindowScore,
    merge_windows,
    mono_float32,
    resample,
)

AUDIOWMARK_KEY_FILE_ENV = "PARLEY_AUDIOWMARK_KEY_FILE"
AUDIOSEAL_GENERATOR_ENV = "PARLEY_AUDIOSEAL_GENERATOR"
AUDIOSEAL_DETECTOR_ENV = "PARLEY_AUDIOSEAL_DETECTOR"
#: audiowmark messages are 128 bits; the 32-bit payload is repeated four times to fill them.
_AUDIOWMARK_HEX_DIGITS = 32
_AUDIOSEAL_BITS = 16


class AudiowmarkWatermarker:
    """Runs the ``audiowmark`` binary on temporary WAV files (it reads and writes files, not pipes)."""

    def __init__(self, binary: str | None = None, key_file: Path | None = None) -> None:
        found = binary or shutil.which("audiowmark")
        if found is None:
            raise WatermarkError("audiowmark is not installed (no 'audiowmark' on PATH)")
        self._binary = found
        env_key = os.environ.get(AUDIOWMARK_KEY_FILE_ENV)
        self._key_file = key_file or (Path(env_key) if env_key else None)

    def __repr__(self) -> str:
        return f"AudiowmarkWatermarker(binary={self._binary!r})"

    def embed(self, audio: np.ndarray, sample_rate_hz: int, payload: int) -> np.ndarray:
        message = f"{payload:08x}" * (_AUDIOWMARK_HEX_DIGITS // 8)
        with tempfile.TemporaryDirectory(prefix="parley-wm-") as folder:
            source, marked = Path(folder) / "in.wav", Path(folder) / "out.wav"
            sf.write(source, mono_float32(audio), sample_rate_hz, subtype="FLOAT")
            self._run(["add", str(source), str(marked), message])
            samples, _ = sf.read(marked, dtype="float32")
        return samples[: audio.size]

    def detect(self, audio: np.ndarray, sample_rate_hz: int) -> WatermarkResult:
        with tempfile.TemporaryDirectory(prefix="parley-wm-") as folder:
            source = Path(folder) / "in.wav"
            sf.write(source, mono_float32(audio), sample_rate_hz, subtype="FLOAT")
            output = self._run(["get", str(source)])
        best: tuple[float, int] | None = None
        for line in output.splitlines():
            # "pattern  <m:ss> <128-bit hex> <sync quality> <bit error measure> <block type>"
            fields = line.split()
            if len(fields) >= 4 and fields[0] == "pattern":
                try:
                    quality, payload = float(fields[3]), int(fields[2][:8], 16)
                except ValueError:
                    continue
                if fields[2] == f"{payload:08x}" * (_AUDIOWMARK_HEX_DIGITS // 8) and (
                    best is None or quality > best[0]
                ):
                    best = (quality, payload)
        if best is None:
            return WatermarkResult(detected=False, payload=None, score=0.0, p_value=1.0)
        return WatermarkResult(detected=True, payload=best[1], score=best[0], p_value=0.0)

    def _run(self, arguments: list[str]) -> str:
        key = ["--key", str(self._key_file)] if self._key_file else []
        proc = subprocess.run([self._binary, *key, *arguments], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise WatermarkError(f"audiowmark {arguments[0]} failed: {proc.stderr.strip()[:200]}")
        return proc.stdout + proc.stderr


class AudioSealWatermarker:
    """AudioSeal generator and detector loaded from local checkpoints (never downloaded here)."""

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

    @classmethod
    def from_env(cls) -> AudioSealWatermarker:
        """Checkpoints named by PARLEY_AUDIOSEAL_GENERATOR and PARLEY_AUDIOSEAL_DETECTOR."""
        generator, detector = os.environ.get(AUDIOSEAL_GENERATOR_ENV), os.environ.get(AUDIOSEAL_DETECTOR_ENV)
        if not generator or not detector:
            raise WatermarkError(f"set {AUDIOSEAL_GENERATOR_ENV} and {AUDIOSEAL_DETECTOR_ENV} to local checkpoints")
        return cls(Path(generator), Path(detector))

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
