"""Engine configuration: one frozen dataclass, filled from defaults, then environment variables, then CLI flags.

Every knob of the engine lives here so that the CLI, the Gradio app and the desktop mode read the same settings the
same way. Environment variables use the ``PARLEY_`` prefix and the field name in upper case.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MODEL = "facebook/seamless-m4t-v2-large"
TINY_MODEL = "tiny"
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "float16", "bfloat16")
#: Same as engine.precision.PRECISIONS (kept here so reading options does not import torch).
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")


def _default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "parley"


@dataclass(frozen=True)
class EngineOptions:
    #: Model to load: a Hub name, a local folder holding a downloaded model, or "tiny" (offline, meaningless output).
    model: str = DEFAULT_MODEL
    #: "auto" picks CUDA when present, else CPU; "cuda:1" style indices are accepted.
    device: str = "auto"
    #: "auto" is bfloat16 (or float16 where bf16 is unsupported) on CUDA and float32 on CPU.
    dtype: str = "auto"
    #: CPU only: dynamic int8 quantisation of the linear layers (smaller, usually faster, slightly less accurate).
    quantize_int8: bool = False
    #: auto, fp32, bf16, fp16 or int8 (engine/precision.py): auto is bf16 on CUDA (fp16 without bf16) and on CPUs with
    #: native bf16 (amx_bf16/avx512_bf16), else fp32; the tiny model stays fp32. Set dtype or quantize_int8 instead
    #: only with precision auto.
    precision: str = "auto"
    #: Where Parley keeps what it builds itself (the tiny model, voice profiles).
    cache_dir: Path = field(default_factory=_default_cache_dir)
    #: Longest recording accepted, in seconds; longer uploads get a clear error instead of exhausting memory.
    max_audio_s: float = 2 * 3600.0
    #: Largest file accepted, in bytes, checked before decoding.
    max_file_bytes: int = 1024 * 1024 * 1024
    #: Longest utterance sent to the model at once when translating files; longer speech is cut at a pause.
    max_segment_s: float = 20.0
    #: Beam width for the text decoder; None keeps the model's own generation config.
    num_beams: int | None = None
    #: Upper bound on generated text tokens per utterance; None keeps the model's own generation config.
    max_new_tokens: int | None = None
    #: Vocoder voice used when no expressive choice is made.
    speaker_id: int = 0

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
        if self.speaker_id < 0:
            raise ValueError("speaker_id must not be negative")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> EngineOptions:
        """Defaults overridden by ``PARLEY_<FIELD>`` environment variables."""
        environ = dict(os.environ if environ is None else environ)
        values = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f"PARLEY_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _parse(f, raw)
        return cls(**values)

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Add the engine's CLI flags; their defaults come from the environment (see :meth:`from_args`)."""
        group = parser.add_argument_group("model")
        group.add_argument(
            "--model", help=f"Hub name, local model folder, or '{TINY_MODEL}' (default: {DEFAULT_MODEL})"
        )
        group.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
        group.add_argument("--dtype", choices=DTYPES, help="weights dtype (default: auto)")
        group.add_argument(
            "--int8", dest="quantize_int8", action="store_true", default=None, help="CPU dynamic int8 quantisation"
        )
        group.add_argument(
            "--precision", choices=PRECISIONS, help="number format; auto picks the fastest for the device (default)"
        )
        group.add_argument("--cache-dir", type=Path, help="where Parley keeps what it builds")
        group.add_argument("--num-beams", type=int, help="beam width for text decoding")
        group.add_argument("--max-audio-s", type=float, help="longest accepted recording in seconds")

    @classmethod
    def from_args(cls, args: argparse.Namespace, environ: dict[str, str] | None = None) -> EngineOptions:
        """Environment settings, overridden by the flags that were given."""
        base = cls.from_env(environ)
        given = {
            f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if getattr(args, f.name, None) is not None
        }
        return dataclasses.replace(base, **given)


def _parse(f: dataclasses.Field, raw: str):
    kind = str(f.type)
    if "bool" in kind:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if "Path" in kind:
        return Path(raw).expanduser()
    if "float" in kind:
        return float(raw)
    if "int" in kind:
        return int(raw)
    return raw
