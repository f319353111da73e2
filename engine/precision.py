"""Which number format the model runs in: ``auto`` picks the fastest one the device does well.

Measured on this project's CPU (Xeon with avx512_bf16, full-size architecture, one thread, ``/work/shared/NOTES.md``
and ``bench/engine.py``): bf16 runs the speech encoder 3.0x faster than fp32 and a batched text-decoder step 3.1x
faster (8 rows), and a lone decoder step no slower (237 vs 273 ms). So on a CPU with bf16 matrix instructions
(``amx_bf16`` or ``avx512_bf16`` in ``/proc/cpuinfo``) ``auto`` is bf16 for the whole model; elsewhere on a CPU it is
fp32 (bf16 is emulated there and slower). On CUDA it is bf16, or fp16 where bf16 is unsupported. The tiny test model
stays fp32 under ``auto``, so tests give the same results on every machine. ``int8`` is dynamic quantisation of the
linear layers (CPU only; 1.7x over fp32 on the full-size model, less than bf16 where bf16 is native).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
#: CPU flags that mean native bf16 matrix arithmetic.
BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
CPUINFO = Path("/proc/cpuinfo")

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": torch.float32}


class PrecisionUnavailableError(ValueError):
    """The requested precision cannot run on the chosen device; the message says what to use instead."""


@dataclass(frozen=True)
class PrecisionChoice:
    """What the model is loaded as, and why."""

    #: Resolved precision: "fp32", "bf16", "fp16" or "int8".
    precision: str
    #: Plain words: why this one (shown on the status line).
    reason: str

    def __post_init__(self) -> None:
        if self.precision not in _DTYPES:
            raise ValueError(f"precision must be one of {', '.join(_DTYPES)}, not {self.precision!r}")

    @property
    def dtype(self) -> torch.dtype:
        """Weights dtype (int8 quantises float32 weights after loading)."""
        return _DTYPES[self.precision]

    @property
    def quantize_int8(self) -> bool:
        return self.precision == "int8"

    @property
    def status(self) -> str:
        return f"{self.precision} ({self.reason})"


#: What a model built without :func:`choose_precision` (e.g. by a benchmark) runs in.
FP32 = PrecisionChoice("fp32", "float32 weights")


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo does not exist, e.g. macOS)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def choose_precision(
    requested: str,
    device: torch.device,
    tiny_model: bool = False,
    flags: frozenset[str] | None = None,
    cuda_bf16: bool | None = None,
) -> PrecisionChoice:
    """Resolve ``requested`` (one of :data:`PRECISIONS`) for ``device``. ``flags`` and ``cuda_bf16`` default to
    what this machine reports; tests pass them to describe other machines."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {requested!r}")
    cuda = device.type == "cuda"
    if requested == "int8" and device.type != "cpu":
        raise PrecisionUnavailableError("int8 is a CPU precision; use bf16 or fp16 on a GPU.")
    if requested == "fp16" and not cuda:
        raise PrecisionUnavailableError("fp16 needs a CUDA GPU; on a CPU use bf16, int8 or fp32.")
    if requested != "auto":
        return PrecisionChoice(requested, "requested")
    if cuda:
        supported = torch.cuda.is_bf16_supported() if cuda_bf16 is None else cuda_bf16
        return PrecisionChoice("bf16", "CUDA GPU") if supported else PrecisionChoice("fp16", "GPU without bf16")
    if device.type != "cpu":
        return PrecisionChoice("fp32", f"{device.type} device")
    if tiny_model:
        return PrecisionChoice("fp32", "tiny test model: same results on every machine")
    native = sorted(BF16_CPU_FLAGS & (cpu_flags() if flags is None else flags))
    if native:
        return PrecisionChoice("bf16", f"CPU has {', '.join(native)}: 3x faster encoder and batched decoding")
    return PrecisionChoice("fp32", "CPU without native bf16")
