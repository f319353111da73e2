"""Audio watermark: every sample Parley synthesises carries a keyed mark that anyone holding the key can find.

The package's one job is marking and reading speech. :mod:`.interface` holds the :class:`Watermarker` protocol and
result types, :mod:`.key` the key, :mod:`.config` the frozen :class:`WatermarkConfig` and
:func:`create_watermarker`; each backend has one module (:mod:`.builtin` with its method in :mod:`.spread`,
:mod:`.audiowmark`, :mod:`.audioseal`); ``python -m safety.watermark detect FILE...`` is :mod:`.__main__`.
"""

from safety.watermark.config import BACKENDS, WatermarkConfig, create_watermarker
from safety.watermark.interface import (
    SAMPLE_RATE_HZ,
    EmbeddingStream,
    Watermarker,
    WatermarkError,
    WatermarkResult,
    WindowScore,
    make_payload,
)
from safety.watermark.key import DEVELOPMENT_KEY, WatermarkKey

__all__ = [
    "BACKENDS",
    "DEVELOPMENT_KEY",
    "SAMPLE_RATE_HZ",
    "EmbeddingStream",
    "WatermarkConfig",
    "WatermarkError",
    "WatermarkKey",
    "WatermarkResult",
    "Watermarker",
    "WindowScore",
    "create_watermarker",
    "make_payload",
]
