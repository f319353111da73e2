"""Engine configuration: one frozen dataclass. The settings module (``compose.settings``) fills it from defaults,
environment variables (``PARLEY_<FIELD>``) and flags (``--field-name``), once, at the entry point; each field's
``help`` metadata is its flag's help text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.constants import FILE_MAX_SEGMENT_S

DEFAULT_MODEL = "facebook/seamless-m4t-v2-large"
TINY_MODEL = "tiny"
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "float16", "bfloat16")
#: Same as engine.precision.PRECISIONS (kept here so reading options does not import torch).
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
#: Where Parley keeps what it builds itself when no cache folder is configured.
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "parley"


def _help(text: str, **extra) -> dict:
    return {"help": text, **extra}


@dataclass(frozen=True)
class EngineOptions:
    #: Model to load: a Hub name, a local folder holding a downloaded model, or "tiny" (offline, meaningless output).
    model: str = field(default=DEFAULT_MODEL, metadata=_help(f"Hub name, local model folder, or '{TINY_MODEL}'"))
    #: "auto" picks CUDA when present, else CPU; "cuda:1" style indices are accepted.
    device: str = field(default="auto", metadata=_help("auto, cpu, cuda, cuda:N or mps"))
    #: "auto" is bfloat16 (or float16 where bf16 is unsupported) on CUDA and float32 on CPU.
    dtype: str = field(default="auto", metadata=_help("weights dtype", choices=DTYPES))
    #: CPU only: dynamic int8 quantisation of the linear layers (smaller, usually faster, slightly less accurate).
    quantize_int8: bool = field(default=False, metadata=_help("CPU dynamic int8 quantisation", flag="--int8"))
    #: auto, fp32, bf16, fp16 or int8 (engine/precision.py): auto is bf16 on CUDA (fp16 without bf16) and on CPUs with
    #: native bf16 (amx_bf16/avx512_bf16), else fp32; the tiny model stays fp32. Set dtype or quantize_int8 instead
    #: only with precision auto.
    precision: str = field(
        default="auto", metadata=_help("number format; auto picks the fastest for the device", choices=PRECISIONS)
    )
    #: Torch's intra-op threads on CPU; None: OMP_NUM_THREADS when set (as Ray sets it for a replica), else half the
    #: cores. Why not all: the model passes run on one scheduler thread beside the sessions' own (audio, VAD, safety)
    #: and the web server's, and on a small shared machine the extra OpenMP threads spin for cores those need
    #: (2 cores, three live streams: a decode step 15.5 ms with two threads, 7.4 ms with one; bench/capacity.py
    #: measures with one).
    cpu_threads: int | None = field(
        default=None, metadata=_help("torch threads on CPU (default: OMP_NUM_THREADS, else half the cores)")
    )
    #: Where Parley keeps what it builds itself (the tiny model, voice profiles).
    cache_dir: Path = field(default=DEFAULT_CACHE_DIR, metadata=_help("where Parley keeps what it builds"))
    #: Longest recording accepted, in seconds; longer uploads get a clear error instead of exhausting memory.
    max_audio_s: float = field(default=2 * 3600.0, metadata=_help("longest accepted recording in seconds"))
    #: Largest file accepted, in bytes, checked before decoding.
    max_file_bytes: int = field(default=1024 * 1024 * 1024, metadata=_help("largest accepted file in bytes"))
    #: Longest utterance sent to the model at once when translating files; longer speech is cut at a pause.
    max_segment_s: float = field(
        default=FILE_MAX_SEGMENT_S, metadata=_help("longest utterance of a file translated at once (s)")
    )
    #: Beam width for the text decoder; None keeps the model's own generation config.
    num_beams: int | None = field(default=None, metadata=_help("beam width for text decoding"))
    #: Upper bound on generated text tokens per utterance; None keeps the model's own generation config.
    max_new_tokens: int | None = field(default=None, metadata=_help("most text tokens generated per utterance"))
    #: Vocoder voice used when no expressive choice is made.
    speaker_id: int = field(default=0, metadata=_help("vocoder voice when the expressive stage does not choose"))
    #: Never contact the Hugging Face Hub (``HF_HUB_OFFLINE``): a Hub name is read from the local cache only.
    hub_offline: bool = field(default=False, metadata=_help("never contact the Hugging Face Hub", env="HF_HUB_OFFLINE"))
    #: The Hub's address, when not the public one (``HF_ENDPOINT``).
    hub_endpoint: str | None = field(default=None, metadata=_help("Hugging Face Hub address", env="HF_ENDPOINT"))

    def __post_init__(self) -> None:
        if self.device.split(":")[0] not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)} (optionally cuda:N), not {self.device!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if self.precision != "auto" and (self.dtype != "auto" or self.quantize_int8):
            raise ValueError("set either precision or dtype/int8, not both")
        if self.max_audio_s <= 0 or self.max_segment_s <= 0 or self.max_file_bytes <= 0:
            raise ValueError("max_audio_s, max_segment_s and max_file_bytes must be positive")
        if self.num_beams is not None and self.num_beams < 1:
            raise ValueError("num_beams must be at least 1")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        if self.cpu_threads is not None and self.cpu_threads < 1:
            raise ValueError("cpu_threads must be at least 1")
        if self.speaker_id < 0:
            raise ValueError("speaker_id must not be negative")
