"""The audiowmark backend: runs the ``audiowmark`` command-line tool (Stefan Westerfeld, GPL) on temporary files.

Optional, for long recordings where its 128-bit, minutes-scale mark is the user's choice. It takes its own key
file (not Parley's key). ``detect_speed`` passes ``--detect-speed``, its search for playback-speed changes
(slower); ``strength`` passes ``--strength`` (audiowmark's default is 10). audiowmark reports a sync quality per
block but no p-value, so results carry ``p_value`` NaN; it finds no marked time ranges either (``marked_s`` is
empty). Build it from source (https://github.com/swesterfeld/audiowmark): Debian bookworm has no package.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from safety.watermark.interface import (
    EmbeddingStream,
    PieceByPieceStream,
    WatermarkError,
    WatermarkResult,
    mono_float32,
)

#: audiowmark messages are 128 bits; the 32-bit payload is repeated four times to fill them.
_MESSAGE_REPEATS = 4


class AudiowmarkWatermarker:
    """Runs the ``audiowmark`` binary on temporary WAV files (it reads and writes files, not pipes)."""

    #: audiowmark positions its blocks itself; pieces marked on their own carry no shared pattern phase.
    period_samples = 0
    #: Measured (issue 21, audiowmark 0.6.5, three 30 s espeak recordings cut short): no payload from 5 s, 2 of 3
    #: from 8 s, all from 10 s and longer.
    min_payload_s = 10.0

    def __init__(
        self, binary: str | None = None, key_file: Path | None = None, strength: float | None = None,
        detect_speed: bool = False,
    ) -> None:  # fmt: skip
        found = binary or shutil.which("audiowmark")
        if found is None:
            raise WatermarkError("audiowmark is not installed (no 'audiowmark' on PATH)")
        self._binary = found
        self._key_file = key_file
        self._strength = strength
        self._detect_speed = detect_speed

    def __repr__(self) -> str:
        return f"AudiowmarkWatermarker(binary={self._binary!r}, strength={self._strength}, speed={self._detect_speed})"

    def stream(self, payload: int) -> EmbeddingStream:
        return PieceByPieceStream(self, payload)

    def embed(self, audio: np.ndarray, sample_rate_hz: int, payload: int) -> np.ndarray:
        message = f"{payload:08x}" * _MESSAGE_REPEATS
        strength = ["--strength", f"{self._strength:g}"] if self._strength is not None else []
        with tempfile.TemporaryDirectory(prefix="parley-wm-") as folder:
            source, marked = Path(folder) / "in.wav", Path(folder) / "out.wav"
            sf.write(source, mono_float32(audio), sample_rate_hz, subtype="FLOAT")
            self._run(["add", *strength, str(source), str(marked), message])
            samples, _ = sf.read(marked, dtype="float32")
        return samples[: audio.size]

    def detect(self, audio: np.ndarray, sample_rate_hz: int) -> WatermarkResult:
        speed = ["--detect-speed"] if self._detect_speed else []
        with tempfile.TemporaryDirectory(prefix="parley-wm-") as folder:
            source = Path(folder) / "in.wav"
            sf.write(source, mono_float32(audio), sample_rate_hz, subtype="FLOAT")
            output = self._run(["get", *speed, str(source)])
        best = best_pattern(output)
        if best is None:
            too_short = audio.size < self.min_payload_s * sample_rate_hz
            return WatermarkResult(detected=False, payload=None, score=0.0, p_value=float("nan"), too_short=too_short)
        return WatermarkResult(detected=True, payload=best[1], score=best[0], p_value=float("nan"))

    def _run(self, arguments: list[str]) -> str:
        key = ["--key", str(self._key_file)] if self._key_file else []
        try:
            proc = subprocess.run([self._binary, *key, *arguments], capture_output=True, text=True, check=False)
        except OSError as e:
            raise WatermarkError(f"audiowmark could not run: {e}") from e
        if proc.returncode != 0:
            raise WatermarkError(f"audiowmark {arguments[0]} failed: {proc.stderr.strip()[:200]}")
        return proc.stdout + proc.stderr


def best_pattern(output: str) -> tuple[float, int] | None:
    """(sync quality, payload) of the best block whose 128 bits are the 32-bit payload four times, from the lines
    ``pattern <m:ss> <128-bit hex> <sync quality> <bit error measure> <block type>`` of ``audiowmark get``."""
    best: tuple[float, int] | None = None
    for line in output.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[0] != "pattern":
            continue
        try:
            quality, payload = float(fields[3]), int(fields[2][:8], 16)
        except ValueError:
            continue
        if fields[2] == f"{payload:08x}" * _MESSAGE_REPEATS and (best is None or quality > best[0]):
            best = (quality, payload)
    return best
