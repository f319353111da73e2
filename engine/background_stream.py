"""A streaming session run on its own thread, so whoever delivers audio never waits for the model.

A front end's chunk handler calls :meth:`BackgroundStream.offer` and returns at once with whatever events are ready
(:meth:`take_events`); the worker thread pushes the audio into the session. When the model falls more than
``max_backlog_s`` behind, new audio is not queued without end: it is counted as skipped, replaced by silence of the
same length (so times stay on the speaker's clock) and announced to the person in a :class:`Notice` — nothing is
dropped without a word. Before that, the session hears how much audio waits behind each chunk and coarsens its own
steps while it trails the speaker in real time (:meth:`StreamingSession.pace`), so the backlog rarely grows
that far.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from engine.stream_events import Notice, StreamEvent
from engine.streaming import StreamingSession

#: Shortest time between two "could not be translated in time" notices; each gives the total so far.
SKIP_NOTICE_EVERY_S = 5.0


class BackgroundStream:
    """One per stream. ``offer`` and ``take_events`` may be called from any thread; the session only ever runs on
    the worker thread."""

    def __init__(self, session: StreamingSession, max_backlog_s: float = 10.0) -> None:
        if max_backlog_s <= 0:
            raise ValueError("max_backlog_s must be positive")
        self.session = session
        self._max_backlog_s = max_backlog_s
        self._lock = threading.Condition()
        self._queue: deque[tuple[np.ndarray, int, float]] = deque()  # samples, rate, source seconds at its end
        self._clock_start: float | None = None  # time.monotonic() when the speaker began, if in real time
        self._queued_s = 0.0
        self._events: list[StreamEvent] = []
        self._closing = False
        self._error: Exception | None = None
        self.received_s = 0.0  # audio offered, seconds
        self.skipped_s = 0.0  # audio that could not be translated in time, seconds
        self._last_notice = -SKIP_NOTICE_EVERY_S
        self._thread = threading.Thread(target=self._run, name="live-stream", daemon=True)
        self._thread.start()

    def offer(self, samples: np.ndarray, sample_rate_hz: int) -> None:
        """Hand over a chunk; never waits for the model. A chunk the session's limits refuse raises
        :class:`~engine.audio.AudioError` here, to the person who sent it."""
        samples = np.asarray(samples)
        self.session.check(samples, sample_rate_hz)
        seconds = samples.shape[0] / sample_rate_hz if samples.ndim else 0.0
        with self._lock:
            if self._closing:
                raise RuntimeError("this stream is finished; start a new one")
            if self._clock_start is None:
                self._clock_start = time.monotonic() - seconds  # the first chunk was being spoken until now
            self.received_s += seconds
            if self._queued_s + seconds > self._max_backlog_s:
                samples = np.zeros(samples.shape[0], dtype=np.float32)  # the speaker's clock goes on
                self._skipped(seconds)
            self._queue.append((samples, sample_rate_hz, self.received_s))
            self._queued_s += seconds
            self._lock.notify()

    def take_events(self) -> list[StreamEvent]:
        """Events produced since the last call, in order. Re-raises an error the worker met."""
        with self._lock:
            if self._error is not None:
                raise self._error
            events, self._events = self._events, []
            return events

    def finish(self, timeout_s: float | None = None) -> list[StreamEvent]:
        """Translate what is queued, flush the session, and return the remaining events (waits up to
        ``timeout_s`` for the worker; the stream's state is kept either way)."""
        with self._lock:
            self._closing = True
            self._lock.notify()
        self._thread.join(timeout_s)
        return self.take_events()

    @property
    def backlog_s(self) -> float:
        """Audio waiting for the model, in seconds."""
        with self._lock:
            return self._queued_s

    def _lag_s(self, end_s: float, waiting_s: float) -> float:
        """How far the session trails a speaker in real time when it reads audio up to ``end_s``: what has been
        spoken since, at most what waits in the queue (a sender faster than real time, e.g. a file sent as a
        stream, is not trailed)."""
        spoken_s = time.monotonic() - self._clock_start
        return max(0.0, min(waiting_s, spoken_s - end_s))

    def _skipped(self, seconds: float) -> None:
        """Count skipped audio; announce it at most every few seconds (called with the lock held)."""
        self.skipped_s += seconds
        now = time.monotonic()
        if now - self._last_notice >= SKIP_NOTICE_EVERY_S:
            self._last_notice = now
            message = f"{self.skipped_s:.1f} s of your speech could not be translated in time (the server is busy)."
            stamp = self.session.source_time_s
            self._events.append(Notice(segment=-1, source_time_s=stamp, emitted_at=time.time(), compute_s=0.0,
                                       message=message))  # fmt: skip

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    while not self._queue and not self._closing:
                        self._lock.wait()
                    if not self._queue:
                        break
                    samples, rate, end_s = self._queue.popleft()
                    lag_s = self._lag_s(end_s, self._queued_s - samples.shape[0] / rate)
                self.session.pace(lag_s)
                events = self.session.push(samples, rate)
                with self._lock:
                    self._queued_s = max(0.0, self._queued_s - samples.shape[0] / rate)
                    self._events += events
            events = self.session.finish()
            with self._lock:
                self._events += events
        except Exception as e:  # handed to the front end by take_events
            with self._lock:
                self._error = e
