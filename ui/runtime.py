"""The one shared model of a running app, loaded in the background after the page is served.

Loading SeamlessM4T v2 large takes minutes (download, then ~10 GB into memory), so the page comes up first and
shows the loading status; everything that needs the model asks :meth:`ModelRuntime.pipeline` and gets a plain
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

from compose.pipeline import Pipeline, build_pipeline
from compose.settings import Settings
from engine.options import TINY_MODEL

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
    """Holds the one :class:`~compose.pipeline.Pipeline` shared by every request (model, VAD, safety judge,
    expressive stage and voices, watermark) and builds it on a background thread."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._pipeline: Pipeline | None = None
        self._status = ModelStatus(ModelState.LOADING, settings.engine.model, "Waiting to load the model…")
        self._thread: threading.Thread | None = None

    @property
    def settings(self) -> Settings:
        return self._settings

    def start(self) -> None:
        """Begin loading in the background (idempotent while a load is running)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            model = self._settings.engine.model
            self._status = ModelStatus(ModelState.LOADING, model, f"Loading {model}…")
            self._thread = threading.Thread(target=self._load, name="model-loader", daemon=True)
            self._thread.start()

    def use_tiny(self) -> None:
        """Switch to the offline tiny model (meaningless output, for trying the interface)."""
        with self._lock:
            engine = dataclasses.replace(self._settings.engine, model=TINY_MODEL)
            self._settings = dataclasses.replace(self._settings, engine=engine)
        self.start()

    def wait(self, timeout_s: float | None = None) -> ModelStatus:
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        return self.status

    @property
    def status(self) -> ModelStatus:
        return self._status

    def pipeline(self) -> Pipeline:
        pipeline = self._pipeline
        if pipeline is None or not self._status.ready:
            raise ModelNotReady(self._status.message)
        return pipeline

    def _load(self) -> None:
        settings = self._settings
        model = settings.engine.model
        started = time.perf_counter()
        try:
            pipeline = build_pipeline(settings)
        except (RuntimeError, OSError, ValueError, MemoryError) as e:  # ModelUnavailableError is a RuntimeError
            # The reason, with the options that fix it, is for the operator (the log); a visitor gets one sentence.
            log.warning("Model %s failed to load: %s", model, e)
            message = "The translation model could not be loaded on this server, so nothing can be translated yet."
            if isinstance(e, MemoryError):
                message = "The translation model does not fit in this server's memory, so nothing can be translated."
            self._status = ModelStatus(ModelState.FAILED, model, message)
            return
        self._pipeline = pipeline
        note = " It produces meaningless output: for trying the interface only." if pipeline.loaded.is_tiny else ""
        self._status = ModelStatus(
            ModelState.READY,
            model,
            f"Model {model} ready on {pipeline.loaded.device} ({time.perf_counter() - started:.0f} s).{note}",
        )
