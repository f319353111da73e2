"""Which number format the model runs in: ``auto`` picks the fastest one the device does well, stage by stage.

Measured on two of this project's CPUs (full-size architecture, one thread, one run each: ``bench/capacity.py
--size full``), per stage:

- Xeon with avx512_vnni and avx512_bf16, no AMX (fp32 / bf16 / int8): speech encoder on 10 s 18.7 / 9.3 / 7.0 s, a
  lone decoder step 367 / 285 / 123 ms, a decoder step for 8 rows 1650 / 743 / 300 ms; the whole 10 s speech→speech
  encoder-once 345 / 121 / 82 s (``bench/engine.py``).
- AMD EPYC with avx2 only, no avx512 (fp32 / int8): speech encoder 15.4 / 9.4 s, a lone step 435 / 123 ms, 8 rows
  1486 / 182 ms. Without native bf16, bf16 is emulated and slower than fp32.

int8 (dynamic quantisation of the linear layers; its kernels need avx2 at least and use VNNI's int8 dot products
where the CPU has them) is fastest for every stage on both, so ``auto`` is int8 for the whole model on a CPU with
VNNI or avx2 and no AMX (the text-to-unit model and vocoder cost about the same in every precision). With AMX
(``amx_bf16``: bf16 tile arithmetic, not measured here) it is bf16; with avx512_bf16 but no VNNI it is bf16;
elsewhere on a CPU fp32. On CUDA it is bf16, or fp16 where bf16 is unsupported. The tiny test model stays fp32 under
``auto``, so tests give the same results on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
#: CPU flags that mean native bf16 matrix arithmetic.
BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
#: CPU flags that mean int8 dot-product instructions (what quantised linear layers run fastest on).
INT8_CPU_FLAGS = frozenset({"avx512_vnni", "avx_vnni"})
#: The least the quantised linear kernels (fbgemm) need; on such a CPU int8 still beat fp32 3.5x on a lone step.
INT8_BASELINE_FLAG = "avx2"
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
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return PrecisionChoice("bf16", "CPU has amx_bf16: bf16 tiles for the encoder and decoding")
    int8 = sorted(INT8_CPU_FLAGS & flags)
    if int8:
        return PrecisionChoice(
            "int8", f"CPU has {', '.join(int8)}: int8 measured fastest for the encoder and lone and batched decoding"
        )
    native = sorted(BF16_CPU_FLAGS & flags)
    if native:
        return PrecisionChoice("bf16", f"CPU has {', '.join(native)}: 2x faster encoder and batched decoding")
    if INT8_BASELINE_FLAG in flags:
        return PrecisionChoice(
            "int8", "CPU has avx2: int8 measured 1.6x fp32 on the encoder and 3.5x on lone decoding steps"
        )
    return PrecisionChoice("fp32", "CPU without avx2, native bf16 or int8 dot products")
