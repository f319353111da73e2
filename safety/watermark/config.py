"""Choosing and building a backend: one frozen :class:`WatermarkConfig`, one factory.

Nothing here reads the environment: the settings module at the entry point fills the config from variables and
flags and passes it in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from safety.watermark.interface import Watermarker, WatermarkError
from safety.watermark.key import WatermarkKey

BACKENDS = ("builtin", "audiowmark", "audioseal")


@dataclass(frozen=True)
class WatermarkConfig:
    """Which backend marks and reads speech, and its settings."""

    #: One of BACKENDS: the built-in spread-spectrum mark, the audiowmark tool, or AudioSeal.
    backend: str = "builtin"
    #: Secret for the built-in mark's key; None uses the public development key (a warning is logged). Hidden from
    #: repr so that it never reaches logs.
    key_secret: str | None = field(default=None, repr=False)
    #: audiowmark binary; None looks for ``audiowmark`` on PATH.
    audiowmark_binary: str | None = None
    #: audiowmark key file (``audiowmark gen-key``); None uses audiowmark's built-in default key.
    audiowmark_key_file: Path | None = None
    #: audiowmark ``--strength`` (its default: 10); None leaves audiowmark's default.
    audiowmark_strength: float | None = None
    #: Pass ``--detect-speed`` to ``audiowmark get``: it then searches playback-speed changes (slower).
    audiowmark_detect_speed: bool = False
    #: AudioSeal generator and detector checkpoints on local disk (both needed for that backend).
    audioseal_generator: Path | None = None
    audioseal_detector: Path | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.key_secret is not None and not self.key_secret:
            raise ValueError("key_secret must not be empty (None uses the development key)")
        if self.audiowmark_strength is not None and not self.audiowmark_strength > 0:
            raise ValueError("audiowmark_strength must be positive")


def create_watermarker(config: WatermarkConfig | None = None) -> Watermarker:
    """The configured backend (the built-in one with the development key when ``config`` is None).

    Optional backends are imported only when asked for; a missing tool, package or checkpoint raises
    :class:`WatermarkError`.
    """
    config = config or WatermarkConfig()
    if config.backend == "builtin":
        from safety.watermark.builtin import SpreadSpectrumWatermarker

        return SpreadSpectrumWatermarker(WatermarkKey.from_secret(config.key_secret))
    if config.backend == "audiowmark":
        from safety.watermark.audiowmark import AudiowmarkWatermarker

        return AudiowmarkWatermarker(
            config.audiowmark_binary, config.audiowmark_key_file, config.audiowmark_strength,
            config.audiowmark_detect_speed,
        )  # fmt: skip
    from safety.watermark.audioseal import AudioSealWatermarker

    if config.audioseal_generator is None or config.audioseal_detector is None:
        raise WatermarkError("the audioseal backend needs both checkpoint paths (generator and detector)")
    return AudioSealWatermarker(config.audioseal_generator, config.audioseal_detector)
