"""Loading SeamlessM4T v2: from the Hub cache, a local folder, or the offline tiny model.

The model is loaded once per process and passed to whatever needs it (translator, streaming sessions); nothing here
keeps it in a global.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.options import TINY_MODEL, EngineOptions
from engine.precision import FP32, PrecisionChoice, PrecisionUnavailableError, choose_precision
from engine.tiny_model import ensure_tiny_model

log = logging.getLogger(__name__)

#: How long to wait for a TCP connection to the Hub before treating it as unreachable. huggingface_hub itself retries
#: each file with back-off for over 30 s, so without this check an offline machine took minutes to say so.
HUB_PROBE_TIMEOUT_S = 3.0


class ModelUnavailableError(RuntimeError):
    """The requested model cannot be loaded; the message says why and what to do instead."""


@dataclass
class LoadedModel:
    """A SeamlessM4T v2 model with its tokenizer and feature extractor, on a device."""

    name: str
    model: torch.nn.Module  # transformers.SeamlessM4Tv2Model
    tokenizer: object  # transformers.SeamlessM4TTokenizer
    feature_extractor: object  # transformers.SeamlessM4TFeatureExtractor
    device: torch.device
    dtype: torch.dtype
    load_seconds: float
    #: The precision chosen and why; its ``status`` is what the status line shows.
    precision: PrecisionChoice = FP32

    @property
    def is_tiny(self) -> bool:
        return self.name == TINY_MODEL

    @property
    def text_languages(self) -> frozenset[str]:
        """Codes the text decoder can produce."""
        return frozenset(self.model.generation_config.text_decoder_lang_to_code_id)

    @property
    def speech_languages(self) -> frozenset[str]:
        """Codes the text-to-unit model and the vocoder can both speak."""
        gen = self.model.generation_config
        return frozenset(gen.t2u_lang_code_to_id) & frozenset(gen.vocoder_lang_code_to_id)

    @property
    def num_speakers(self) -> int:
        return int(self.model.config.vocoder_num_spkrs)


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailableError("CUDA was requested but no CUDA GPU is available; use --device cpu.")
    return device


def resolve_precision(options: EngineOptions, device: torch.device) -> PrecisionChoice:
    """``options.precision``, or with precision auto an explicit legacy ``dtype``/``quantize_int8``."""
    if options.precision == "auto" and options.quantize_int8:
        return PrecisionChoice("int8", "requested (--int8)")
    if options.precision == "auto" and options.dtype != "auto":
        names = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
        return PrecisionChoice(names[options.dtype], "requested (--dtype)")
    try:
        return choose_precision(options.precision, device, tiny_model=options.model == TINY_MODEL)
    except PrecisionUnavailableError as e:
        raise ModelUnavailableError(str(e)) from e


def model_source(options: EngineOptions) -> str | Path:
    """Where to load from: the tiny model's cache folder, a local folder, or a Hub name."""
    if options.model == TINY_MODEL:
        return ensure_tiny_model(options.cache_dir)
    local = Path(options.model).expanduser()
    if local.exists():
        if not (local / "config.json").exists():
            raise ModelUnavailableError(f"The folder {local} does not contain a model (no config.json).")
        return local
    return options.model


def hub_reachable(options: EngineOptions, timeout_s: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether the Hugging Face Hub accepts a TCP connection now (``hub_offline`` means no, as huggingface_hub's
    ``HF_HUB_OFFLINE`` does)."""
    if options.hub_offline:
        return False
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    url = urlsplit(options.hub_endpoint or constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def cpu_threads(options: EngineOptions) -> int:
    """Torch threads for model passes on CPU: the configured number; else what ``OMP_NUM_THREADS`` gave torch (Ray
    sets it from a replica's ``num_cpus``: half a 16-core host would oversubscribe a 2-CPU replica); else half the
    cores this process may use."""
    if options.cpu_threads is not None:
        return options.cpu_threads
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, usable // 2)


def load_model(options: EngineOptions) -> LoadedModel:
    """Load the model, tokenizer and feature extractor named by ``options``.

    Raises :class:`ModelUnavailableError` in plain words when the Hub cannot be reached and no copy is cached.
    """
    from transformers import SeamlessM4TFeatureExtractor, SeamlessM4TTokenizer, SeamlessM4Tv2Model

    started = time.perf_counter()
    device = resolve_device(options.device)
    precision = resolve_precision(options, device)
    dtype = precision.dtype
    if precision.quantize_int8 and device.type != "cpu":
        raise ModelUnavailableError("int8 quantisation is a CPU option; drop --int8 or use --device cpu.")
    source = model_source(options)
    # A Hub name while the Hub is unreachable: read the local cache only, so a missing copy fails at once.
    offline = isinstance(source, str) and not hub_reachable(options)
    if offline:
        log.info("The Hugging Face Hub cannot be reached; looking for %s in the local cache only", source)
    try:
        tokenizer = SeamlessM4TTokenizer.from_pretrained(source, local_files_only=offline)
        feature_extractor = SeamlessM4TFeatureExtractor.from_pretrained(source, local_files_only=offline)
        model = SeamlessM4Tv2Model.from_pretrained(source, dtype=dtype, local_files_only=offline)
    except OSError as e:
        raise ModelUnavailableError(
            f"Could not load the model '{options.model}': the Hugging Face Hub cannot be reached and no local copy "
            "was found. Use --model tiny for offline testing, or --model PATH with a downloaded model folder."
        ) from e
    model = model.to(device).eval()
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(options))
    if precision.quantize_int8:
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    seconds = time.perf_counter() - started
    threads = f", {torch.get_num_threads()} torch threads" if device.type == "cpu" else ""
    log.info("Loaded %s on %s, %s%s, in %.1f s", options.model, device, precision.status, threads, seconds)
    return LoadedModel(
        name=options.model,
        model=model,
        tokenizer=tokenizer,
        feature_extractor=feature_extractor,
        device=device,
        dtype=dtype,
        load_seconds=seconds,
        precision=precision,
    )
