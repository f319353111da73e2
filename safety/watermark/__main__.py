"""``python -m safety.watermark detect FILE...``: prints detection, payload and watermarked time ranges."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import sys
from pathlib import Path

from engine.audio import AudioError, decode, to_mono
from safety.watermark.config import BACKENDS, WatermarkConfig, create_watermarker
from safety.watermark.interface import WatermarkError, WatermarkResult, describe_payload


def _format_payload(result: WatermarkResult, min_payload_s: float) -> str:
    payload = result.payload
    if payload is None:
        return (
            f"none: too short to hold one (needs {min_payload_s:.1f} s of sound)" if result.too_short else "unreadable"
        )
    return f"0x{payload:08x} ({describe_payload(payload)})"


def _format_p(p_value: float) -> str:
    return "no p-value from this backend" if math.isnan(p_value) else f"p-value {p_value:.1e}"


def _format_ranges(ranges: list[tuple[float, float]]) -> str:
    return ", ".join(f"{start:.2f}-{end:.2f} s" for start, end in ranges) or "none"


def main(argv: list[str] | None = None, config: WatermarkConfig | None = None) -> int:
    """``python -m safety.watermark detect FILE...``: detection, payload and marked time ranges per file.

    ``config`` gives the defaults (the settings module passes the environment's); ``--backend`` and ``--key``
    override them.
    """
    config = config or WatermarkConfig()

    parser = argparse.ArgumentParser(prog="python -m safety.watermark", description="Parley audio watermark")
    commands = parser.add_subparsers(dest="command", required=True)
    detect = commands.add_parser("detect", help="look for the watermark in audio files (any format ffmpeg reads)")
    detect.add_argument("files", nargs="+", type=Path)
    detect.add_argument("--backend", choices=BACKENDS, default=config.backend)
    detect.add_argument("--key", help="the built-in mark's key (default: the configured one, else the development key)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        chosen = dataclasses.replace(config, backend=args.backend, key_secret=args.key or config.key_secret)
        watermarker = create_watermarker(chosen)
    except (ValueError, WatermarkError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    status = 0
    for path in args.files:
        try:
            samples, rate = decode(path)
            result = watermarker.detect(to_mono(samples), rate)
        except (AudioError, WatermarkError) as e:
            print(f"{path}: error: {e}")
            status = 2
            continue
        if result.detected:
            payload = _format_payload(result, watermarker.min_payload_s)
            print(f"{path}: watermark detected, score {result.score:.1f}, {_format_p(result.p_value)}, "
                  f"payload {payload}, marked {_format_ranges(result.marked_s)}")  # fmt: skip
        else:
            short = (
                f"; less than {watermarker.min_payload_s:.1f} s of sound, too short to tell" if result.too_short else ""
            )
            print(f"{path}: no watermark found (score {result.score:.1f}{short})")
    return status


if __name__ == "__main__":
    sys.exit(main())
