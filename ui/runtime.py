"""The one shared model of a running app, loaded in the background after the page is served.

Loading SeamlessM4T v2 large takes minutes (download, then ~10 GB into memory), so the page comes up first and
shows the loading status; everything that needs the model asks :meth:`ModelRuntime.translator` and gets a plain
error until it is ready. When the chosen model cannot load (no network, not enough memory), the status says why and
the person can switch to the offline tiny model.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from enum import Enum

import torch

from engine.models import load_model
from engine.options import TINY_MODEL, EngineOptions
from engine.prosody import ExpressiveOptions, ExpressiveStage
from engine.translator import Translator
from engine.vad import load_vad_model
from engine.voices import VoiceMatcher
from safety.pipeline import SafetyChecker

log = logging.getLogger(__name__)


class ModelState(str, Enum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class ModelStatus:
    state: ModelState
    model: str
    message: str

    @property
    def ready(self) -> bool:
        return self.state is ModelState.READY


class ModelNotReady(RuntimeError):
    """Raised to the person who asks for a translation before the model is loaded (or after it failed)."""


class ModelRuntime:
    """Holds what is built once per model and shared by every request: the :class:`Translator`, the VAD prototype,
    the safety checker and the expressive stage (whose voice profiles are measured once per model); loads them on a
    background thread."""

    def __init__(self, options: EngineOptions) -> None:
        self._options = options
        self._lock = threading.Lock()
        self._translator: Translator | None = None
        self._vad_model: torch.nn.Module | None = None
        self._safety: SafetyChecker | None = None
        self._expressive: ExpressiveStage | None = None
        self._status = ModelStatus(ModelState.LOADING, options.model, "Waiting to load the model…")
        self._thread: threading.Thread | None = None

    @property
    def options(self) -> EngineOptions:
        return self._options

    def start(self) -> None:
        """Begin loading in the background (idempotent while a load is running)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._status = ModelStatus(ModelState.LOADING, self._options.model, f"Loading {self._options.model}…")
            self._thread = threading.Thread(target=self._load, name="model-loader", daemon=True)
            self._thread.start()

    def use_tiny(self) -> None:
        """Switch to the offline tiny model (meaningless output, for trying the interface)."""
        with self._lock:
            self._options = dataclasses.replace(self._options, model=TINY_MODEL)
        self.start()

    def wait(self, timeout_s: float | None = None) -> ModelStatus:
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        return self.status

    @property
    def status(self) -> ModelStatus:
        return self._status

    def translator(self) -> Translator:
        translator = self._translator
        if translator is None or not self._status.ready:
            raise ModelNotReady(self._status.message)
        return translator

    def vad_model(self) -> torch.nn.Module:
        if self._vad_model is None:
            raise ModelNotReady(self._status.message)
        return self._vad_model

    def safety(self) -> SafetyChecker:
        self.translator()
        return self._safety

    def expressive(self) -> ExpressiveStage:
        self.translator()
        return self._expressive

    def _load(self) -> None:
        options = self._options
        started = time.perf_counter()
        try:
            vad_model = self._vad_model or load_vad_model()
            loaded = load_model(options)
        except (RuntimeError, OSError, ValueError, MemoryError) as e:  # ModelUnavailableError is a RuntimeError
            log.warning("Model %s failed to load: %s", options.model, e)
            message = f"The model {options.model} could not be loaded: {e}"
            if isinstance(e, MemoryError):
                message = f"The model {options.model} does not fit in this machine's memory."
            self._status = ModelStatus(ModelState.FAILED, options.model, message)
            return
        self._vad_model = vad_model
        translator = Translator(loaded, options)
        self._safety = SafetyChecker(translator)
        expressive_options = ExpressiveOptions(cache_dir=options.cache_dir)
        self._expressive = ExpressiveStage(expressive_options, VoiceMatcher(translator, expressive_options))
        self._translator = translator
        note = " It produces meaningless output: for trying the interface only." if loaded.is_tiny else ""
        self._status = ModelStatus(
            ModelState.READY,
            options.model,
            f"Model {options.model} ready on {loaded.device} ({time.perf_counter() - started:.0f} s).{note}",
        )
