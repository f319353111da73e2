"""One inference scheduler per loaded model: every model call of every session and request goes through its worker.

Why: on a CPU a text-decoder step is bound by memory bandwidth, so eight rows cost about what one costs
(``/work/shared/NOTES.md``: 718 ms fp32 / 233 ms bf16 for eight rows against 273 / 237 ms for one). Callers on
any number of threads submit calls; one worker thread forms batches of the same kind:

- ``continue_text`` rows of any length, prefix, target, budget and banned words decode together
  (:class:`engine.batched_decoding.GreedyBatch`), exactly as each would alone;
- speech encodes are batched only among inputs of the same length, and speech synthesis runs one call at a time,
  because SeamlessM4T v2's speech encoder, text-to-unit model and vocoder are not invariant to padding
  (:mod:`engine.scheduler_calls`); they run one after the other in the same turn.

Fairness: live steps and text requests (:attr:`Priority.LIVE`) are taken before file segments, and calls of one
priority round-robin across sessions. At most one decode batch per priority is in flight (rows arriving meanwhile
join it after their prompt pass); the worker interleaves the priorities' steps (a file decode takes one step per
``live_steps_per_file_step`` live steps), so a long file segment delays a live row by one step, not by its whole
decode. The queue is bounded: a call beyond ``max_queued_calls`` raises :class:`SchedulerBusyError` at once. Every
call's queue wait is measured and kept on the session's :class:`SessionBackend`, so a session can see that it
falls behind and coarsen its steps.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from engine.batched_decoding import GreedyBatch
from engine.scheduler_calls import (
    Call,
    CallTiming,
    Kind,
    Priority,
    SchedulerBusyError,
    SchedulerClosedError,
    pick_calls,
    run_encode_group,
    run_speak_group,
)
from engine.scheduler_options import SchedulerOptions
from engine.scheduler_requests import ScheduledTranslator
from engine.scheduler_session import SessionBackend
from engine.tasks import Task
from engine.translator import Encoded, TranslationResult, Translator

log = logging.getLogger(__name__)

#: Sessions whose last turn is remembered for round-robin; past it the half served longest ago is forgotten (they
#: then count as never served, so they still go first, as they would have).
SERVED_KEYS = 4096
#: Model passes kept in :attr:`InferenceScheduler.batch_sizes` per kind (the older half goes past it).
RECORDED_PASSES = 100_000


@dataclass
class _Decode:
    """A decode batch in flight and the calls its rows answer."""

    batch: GreedyBatch
    calls: list[Call]
    answered: set[int] = field(default_factory=set)


class InferenceScheduler:
    """Batches model calls across threads; also a :class:`engine.backend.StreamingBackend` (sessions keyed by the
    calling thread). Use :meth:`session` for a backend bound to one session key and priority."""

    def __init__(self, translator: Translator, options: SchedulerOptions | None = None) -> None:
        if (translator.options.num_beams or 1) != 1:
            raise ValueError("the scheduler decodes greedily; num_beams must be 1")
        self.translator = translator
        self.options = options or SchedulerOptions()
        self._cond = threading.Condition()
        self._pending: list[Call] = []
        self._decodes: dict[Priority, _Decode] = {}
        self._served = itertools.count()  # round-robin clock: each session remembers when it was last served
        self._last_served: dict[object, int] = {}
        self._turns = itertools.count()  # worker turns with live decodes in flight (file steps take every n-th)
        self._closed = False
        #: Rows of each model pass, for benchmarks (kind → list of batch sizes; the latest RECORDED_PASSES at most).
        self.batch_sizes: dict[Kind, list[int]] = {k: [] for k in Kind}
        #: Seconds the worker spent in model passes, per kind (for benchmarks).
        self.busy_s: dict[Kind, float] = dict.fromkeys(Kind, 0.0)
        self._worker = threading.Thread(target=self._run, name="parley-scheduler", daemon=True)
        self._worker.start()

    # ---- lifecycle ----------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the worker; waiting calls fail with SchedulerClosedError."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._worker.join()

    @property
    def alive(self) -> bool:
        """Whether the worker still serves calls (a model replica's health check asks)."""
        return self._worker.is_alive() and not self._closed

    def __enter__(self) -> InferenceScheduler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def session(self, key: object, priority: Priority = Priority.LIVE) -> SessionBackend:
        return SessionBackend(self, key, priority)

    # ---- StreamingBackend (keyed by thread) ---------------------------------------------------------------------

    def encode(self, audio: np.ndarray) -> Encoded:
        return self.session(threading.get_ident()).encode(audio)

    def continue_text(self, state, tgt_lang, prefix, max_new_tokens, banned_words=()) -> list[int]:
        return self.session(threading.get_ident()).continue_text(state, tgt_lang, prefix, max_new_tokens, banned_words)

    def speak(self, state, tgt_lang, committed, new_count, speaker_id) -> np.ndarray:
        return self.session(threading.get_ident()).speak(state, tgt_lang, committed, new_count, speaker_id)

    def starts_word(self, token_id: int) -> bool:
        return self.translator.starts_word(token_id)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self.translator.detokenize(tokens)

    # ---- whole inputs (files, text) -------------------------------------------------------------------------------

    def requests(self, key: object, priority: Priority = Priority.FILE) -> ScheduledTranslator:
        """The translator's whole-input API (file uploads, text requests) through the queue, as session ``key``."""
        return ScheduledTranslator(self, key, priority)

    def translate(
        self,
        inputs: Sequence[np.ndarray | str],
        task: Task,
        tgt_lang: str,
        src_lang: str | None = None,
        speaker_id: int | None = None,
        key: object = None,
        priority: Priority = Priority.FILE,
    ) -> list[TranslationResult]:
        """:meth:`Translator.translate` through the queue, each input as it would be alone (so a file segment
        gives the same result whoever else is being served). Blocks until every input is done."""
        key = threading.get_ident() if key is None else key
        return self.requests(key, priority).translate(inputs, Task(task), tgt_lang, src_lang, speaker_id)

    # ---- queue --------------------------------------------------------------------------------------------------

    def submit(self, kind: Kind, payload: tuple, key: object, priority: Priority) -> tuple[object, CallTiming]:
        """Queue one call and wait for it; returns its result and timing. Raises SchedulerBusyError when full."""
        return self.submit_many(kind, [payload], key, priority)[0]

    def submit_many(
        self, kind: Kind, payloads: Sequence[tuple], key: object, priority: Priority
    ) -> list[tuple[object, CallTiming]]:
        """Queue calls of one kind together (e.g. the sentences of one text request, which then share decode
        batches) and wait for all; results in order. All are queued or none: SchedulerBusyError when they do not
        fit in the queue."""
        now = time.perf_counter()
        calls = [Call(kind, payload, key, priority, now, Future()) for payload in payloads]
        with self._cond:
            if self._closed:
                raise SchedulerClosedError("The translation engine has stopped.")
            if len(self._pending) + len(calls) > self.options.max_queued_calls:
                raise SchedulerBusyError("The server is busy with other people's translations; try again shortly.")
            self._pending += calls
            self._cond.notify_all()
        return [call.future.result() for call in calls]

    def _take(self) -> list[Call]:
        """Under the lock: the next group of calls to run (maybe empty, when only decodes are in flight)."""
        limit = self.options.max_batch_rows if self.options.batching else 1
        full = {p for p, d in self._decodes.items() if d.batch is None or d.batch.batch_size >= limit}
        chosen = pick_calls(self._pending, full, self._last_served, limit)
        for c in chosen:
            self._pending.remove(c)
            self._last_served[c.key] = next(self._served)
        if len(self._last_served) > SERVED_KEYS:  # every session and request thread leaves a key: keep the recent
            recent = sorted(self._last_served.items(), key=lambda item: item[1])[SERVED_KEYS // 2 :]
            self._last_served = dict(recent)
        return chosen

    def _record_pass(self, kind: Kind, rows: int) -> None:
        """Note a model pass in :attr:`batch_sizes`, whose older half goes once it holds RECORDED_PASSES (a server
        makes a pass per decode step, for as long as it runs)."""
        sizes = self.batch_sizes[kind]
        sizes.append(rows)
        if len(sizes) > RECORDED_PASSES:
            del sizes[: RECORDED_PASSES // 2]

    def _wait_for_work(self) -> list[Call] | None:
        """Block until there is something to do; None once closed. Holds a batch open for the wait window."""
        with self._cond:
            while not self._closed and not self._pending and not self._decodes:
                self._cond.wait()
            if self._closed:
                return None
            if self._pending and not self._decodes and self.options.batching:
                deadline = min(c.enqueued_s for c in self._pending) + self.options.wait_window_ms / 1000
                while not self._closed and len(self._pending) < self.options.max_batch_rows:
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            return self._take()

    def _run(self) -> None:
        while (calls := self._wait_for_work()) is not None:
            try:
                if calls:
                    self._start(calls)
                self._step_decodes()
            except Exception as e:  # a bug must not stop the worker: its calls fail, everyone else carries on
                log.exception("scheduler turn failed")
                for c in calls + [c for d in self._decodes.values() for c in d.calls]:
                    if not c.future.done():
                        c.future.set_exception(e)
                self._decodes.clear()
        self._fail_all()

    def _start(self, calls: list[Call]) -> None:
        started = time.perf_counter()
        kind = calls[0].kind
        if kind is Kind.CONTINUE:
            self._start_decode(calls)
            return
        runner: Callable = run_encode_group if kind is Kind.ENCODE else run_speak_group
        for group in _groups(calls):
            self._record_pass(kind, len(group))
            try:
                results = runner(self.translator, [c.payload for c in group])
            except Exception as e:  # the error belongs to the callers; the worker carries on
                for c in group:
                    c.future.set_exception(e)
                continue
            self.busy_s[kind] += time.perf_counter() - started
            for c, r in zip(group, results, strict=True):
                c.future.set_result((r, CallTiming(started - c.enqueued_s, time.perf_counter() - started, len(group))))

    def _start_decode(self, calls: list[Call]) -> None:
        """A new decode batch; while one of the same priority is in flight, the newcomers read their prompts and
        then join it (continuous batching), so rows that arrive mid-decode do not wait for it to end."""
        current = self._decodes.get(calls[0].priority)
        if current is not None and current.batch is not None and current.batch.steps == 0:
            calls = current.calls + calls  # not started yet (file steps wait for live ones): start them together
            current = None
        rows = [c.payload[0] for c in calls]
        new = _Decode(_guarded(lambda: GreedyBatch(self.model, rows), calls), calls)
        if new.batch is None:
            return
        if current is None or current.batch is None:
            self._decodes[calls[0].priority] = new
            return
        if self._step(new) and not new.batch.done:
            offset = current.batch.absorb(new.batch)
            current.calls += new.calls
            current.answered |= {offset + row for row in new.answered}

    def _step_decodes(self) -> None:
        """One step of every decode in flight, live first; file decodes yield to live ones (see the options)."""
        live = Priority.LIVE in self._decodes
        for priority in sorted(self._decodes):
            if priority is Priority.FILE and live and next(self._turns) % self.options.live_steps_per_file_step:
                continue
            decode = self._decodes[priority]
            if decode.batch is None or not self._step(decode) or decode.batch.done:
                del self._decodes[priority]

    def _step(self, decode: _Decode) -> bool:
        """One step of ``decode``; answers the rows that finished. False when the step failed (its callers hold
        the error)."""
        self._record_pass(Kind.CONTINUE, decode.batch.batch_size)
        started = time.perf_counter()
        try:
            decode.batch.step()
        except Exception as e:  # the error belongs to the callers; the worker carries on
            for c in decode.calls:
                if not c.future.done():
                    c.future.set_exception(e)
            return False
        self.busy_s[Kind.CONTINUE] += time.perf_counter() - started
        self._answer(decode)
        return True

    def _answer(self, decode: _Decode) -> None:
        now = time.perf_counter()
        for row, call in enumerate(decode.calls):
            if row not in decode.answered and decode.batch.finished(row):
                decode.answered.add(row)
                timing = CallTiming(call.started_s - call.enqueued_s, now - call.started_s, len(decode.calls))
                call.future.set_result((decode.batch.new_tokens(row), timing))

    def _fail_all(self) -> None:
        error = SchedulerClosedError("The translation engine has stopped.")
        with self._cond:
            calls, self._pending = self._pending, []
        calls += [c for d in self._decodes.values() for c in d.calls]
        for c in calls:
            if not c.future.done():
                c.future.set_exception(error)

    @property
    def model(self):
        return self.translator.loaded.model


def _guarded(build: Callable[[], GreedyBatch], calls: list[Call]) -> GreedyBatch | None:
    """Build a decode batch; on failure hand the error to its callers and return None."""
    now = time.perf_counter()
    for c in calls:
        c.started_s = now
    try:
        return build()
    except Exception as e:
        for c in calls:
            c.future.set_exception(e)
        return None


def _groups(calls: list[Call]) -> list[list[Call]]:
    """Calls whose inputs have the same shape (the only ones that batch exactly), in order."""
    groups: dict[object, list[Call]] = {}
    for c in calls:
        groups.setdefault(c.shape_key(), []).append(c)
    return list(groups.values())
