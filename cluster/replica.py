"""One model replica of the pool: loads the model once and runs the in-process scheduler inside it.

Every method is stateless for the caller: it carries the session key (the scheduler's round-robin unit), the
target, prefix and budget, and names its encoder state (``ref``, answered from the replica's small cache, or
:class:`cluster.wire.Missing`) or carries it. Live calls go through the scheduler, so they batch with every other
call that reaches this replica; file and text requests run through the translator (as the local backend's do).
Serve runs these synchronous methods on a thread pool, so concurrent calls meet in the scheduler's queue.
"""

from __future__ import annotations

import collections
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from ray import serve
from ray.util import metrics

from cluster.wire import Missing, Reply, Stamp, WireState
from engine.models import load_model
from engine.options import EngineOptions
from engine.scheduler import InferenceScheduler
from engine.scheduler_options import SchedulerOptions
from engine.tasks import Task
from engine.translator import Encoded, TranslationResult, Translator

log = logging.getLogger(__name__)

#: Encoder states kept per replica (a live step's encode is followed by its continue and speak calls; older ones
#: are only needed after a reroute, which carries the state anyway).
CACHED_STATES = 256
#: Bucket bounds of the call-latency histogram, in seconds.
LATENCY_BOUNDS_S = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]
#: Bucket bounds of the batch-rows histogram.
BATCH_BOUNDS = [1, 2, 4, 8, 16, 32]

#: A call's encoder state: its ``ref`` and, when the front end resends after a miss, the state itself.
StateArg = tuple[str, WireState | None]


class ModelReplica:
    """The body of the Serve deployment (:func:`cluster.app.deployment`)."""

    def __init__(self, engine: EngineOptions, scheduler: SchedulerOptions) -> None:
        self.translator = Translator(load_model(engine), engine)
        self.scheduler = InferenceScheduler(self.translator, scheduler)
        self.replica = serve.get_replica_context().replica_tag
        self._states: collections.OrderedDict[str, Encoded] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._ongoing = 0
        tags = ("replica", "call")
        self._calls = metrics.Counter("parley_replica_calls", "model calls answered", tag_keys=tags)
        self._errors = metrics.Counter("parley_replica_errors", "model calls that failed", tag_keys=tags)
        self._misses = metrics.Counter("parley_replica_state_misses", "calls naming a state not held", tag_keys=tags)
        self._latency = metrics.Histogram(
            "parley_replica_call_latency_s", "seconds per model call", LATENCY_BOUNDS_S, tag_keys=tags
        )
        self._batch = metrics.Histogram("parley_replica_batch_rows", "rows per model pass", BATCH_BOUNDS, tags)
        self._queue = metrics.Gauge("parley_replica_queue_length", "calls waiting or running", tag_keys=("replica",))
        log.info("replica %s (pid %d) ready on %s", self.replica, os.getpid(), self.translator.loaded.device)

    # ---- live calls (through the scheduler) ---------------------------------------------------------------------

    def encode(self, key: str, audio: np.ndarray) -> Reply:
        def run(backend) -> WireState:
            return self._keep(backend.encode(audio))

        return self._served("encode", key, run)

    def encode_and_continue(
        self, key: str, audio: np.ndarray, tgt_lang: str, prefix: Sequence[int], max_new_tokens: int, banned=()
    ) -> Reply:
        """A live step's first two calls in one round trip: its state (kept here, as ``encode``'s) and tokens."""

        def run(backend) -> tuple[WireState, list[int]]:
            encoded = backend.encode(audio)
            return self._keep(encoded), backend.continue_text(encoded, tgt_lang, prefix, max_new_tokens, banned)

        return self._served("encode_and_continue", key, run)

    def continue_text(
        self, key: str, state: StateArg, tgt_lang: str, prefix: Sequence[int], max_new_tokens: int, banned=()
    ) -> Reply | Missing:
        return self._with_state("continue_text", key, state,
                                lambda b, s: b.continue_text(s, tgt_lang, prefix, max_new_tokens, banned))  # fmt: skip

    def speak(
        self, key: str, state: StateArg, tgt_lang: str, committed: Sequence[int], new_count: int, speaker_id
    ) -> Reply | Missing:
        return self._with_state("speak", key, state,
                                lambda b, s: b.speak(s, tgt_lang, committed, new_count, speaker_id))  # fmt: skip

    # ---- file and text requests (translator) --------------------------------------------------------------------

    def encode_speech(self, key: str, audio: np.ndarray) -> Reply:
        run = lambda _: self._keep(self.translator.encode_speech([audio]))  # noqa: E731
        return self._served("encode_speech", key, run, scheduled=False)

    def encode_text(self, key: str, texts: Sequence[str], src_lang: str) -> Reply:
        run = lambda _: self._keep(self.translator.encode_text(texts, src_lang))  # noqa: E731
        return self._served("encode_text", key, run, scheduled=False)

    def decode(
        self, key: str, state: StateArg, task: str, tgt_lang: str, speaker_id, bad_words_ids=None
    ) -> Reply | Missing:
        kwargs = {} if bad_words_ids is None else {"bad_words_ids": bad_words_ids}

        def run(_, encoded: Encoded) -> list[TranslationResult]:
            return self.translator.decode(encoded, Task(task), tgt_lang, speaker_id, **kwargs)

        return self._with_state("decode", key, state, run, scheduled=False)

    def speak_decoded(self, key: str, state: StateArg, results: list[TranslationResult], speaker_id) -> Reply | Missing:
        run = lambda _, encoded: self.translator.speak_decoded(encoded, results, speaker_id)  # noqa: E731
        return self._with_state("speak_decoded", key, state, run, scheduled=False)

    # ---- health -------------------------------------------------------------------------------------------------

    def check_health(self) -> None:
        """Serve calls this every few seconds; a replica whose scheduler stopped is replaced."""
        if not self.scheduler.alive:
            raise RuntimeError("the replica's scheduler has stopped")

    def __del__(self) -> None:  # Serve's graceful drain ends here, after the calls in flight have finished
        scheduler = getattr(self, "scheduler", None)
        if scheduler is not None:
            scheduler.close()

    # ---- helpers ------------------------------------------------------------------------------------------------

    def _keep(self, encoded: Encoded) -> WireState:
        ref = secrets.token_hex(8)
        with self._lock:
            self._states[ref] = encoded
            while len(self._states) > CACHED_STATES:
                self._states.popitem(last=False)
        mask = None if encoded.attention_mask is None else encoded.attention_mask.float().cpu().numpy()
        return WireState(ref, encoded.hidden_states.float().cpu().numpy(), mask, encoded.seconds)

    def _state(self, state: StateArg) -> Encoded | None:
        ref, carried = state
        with self._lock:
            if ref in self._states:
                self._states.move_to_end(ref)
                return self._states[ref]
        if carried is None:
            return None
        loaded = self.translator.loaded
        hidden = torch.from_numpy(carried.hidden).to(loaded.device, loaded.dtype)
        mask = None if carried.mask is None else torch.from_numpy(carried.mask).to(loaded.device, hidden.dtype)
        encoded = Encoded(hidden, mask, carried.seconds)
        with self._lock:
            self._states[ref] = encoded
        return encoded

    def _with_state(self, name: str, key: str, state: StateArg, run: Callable, scheduled: bool = True):
        encoded = self._state(state)
        if encoded is None:
            self._misses.inc(tags={"replica": self.replica, "call": name})
            return Missing(self._stamp(0.0, None))
        return self._served(name, key, lambda backend: run(backend, encoded), scheduled)

    def _served(self, name: str, key: str, run: Callable, scheduled: bool = True) -> Reply:
        """Run one call with its metrics; ``run`` gets a scheduler session for ``key`` (None when not scheduled)."""
        tags = {"replica": self.replica, "call": name}
        backend = self.scheduler.session(key) if scheduled else None
        started = time.perf_counter()
        with self._lock:
            self._ongoing += 1
            self._queue.set(self._ongoing, tags={"replica": self.replica})
        try:
            value = run(backend)
        except Exception:
            self._errors.inc(tags=tags)
            raise
        finally:
            with self._lock:
                self._ongoing -= 1
                self._queue.set(self._ongoing, tags={"replica": self.replica})
        run_s = time.perf_counter() - started
        timing = None if backend is None else backend.last_timing
        self._calls.inc(tags=tags)
        self._latency.observe(run_s, tags=tags)
        self._batch.observe(1 if timing is None else timing.batch_rows, tags=tags)
        return Reply(value, self._stamp(run_s, timing))

    def _stamp(self, run_s: float, timing) -> Stamp:
        wait = 0.0 if timing is None else timing.queue_wait_s
        rows = 1 if timing is None else timing.batch_rows
        return Stamp(self.replica, os.getpid(), self._ongoing, wait, run_s, rows)
