"""The front end's side of the pool: sessions whose model calls go to the Serve replicas, with retries.

Session state (committed tokens, VAD, policy) stays here; each call carries what it needs (see
:mod:`cluster.wire`). When a replica dies mid-call, the call is sent again and Serve routes it to a live replica;
since a call is a pure function of what it carries (greedy decoding), the answer is the one the dead replica would
have given, so no committed text is lost or repeated. The session shows one "reconnecting" notice per outage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from ray import exceptions as ray_errors
from ray.serve import exceptions as serve_errors
from ray.serve.handle import DeploymentHandle

from cluster.head import Head, PoolUnavailableError, stop
from cluster.wire import Missing, Reply, Stamp, WireState
from engine.scheduler_calls import Priority
from engine.tasks import Task
from engine.translator import TranslationResult, Translator

log = logging.getLogger(__name__)

#: Failures that mean "this replica is gone or not there yet", not "this call is wrong": the call is sent again.
RETRYABLE = (
    ray_errors.RayActorError,
    ray_errors.WorkerCrashedError,
    ray_errors.RpcError,
    serve_errors.ReplicaUnavailableError,
    serve_errors.DeploymentUnavailableError,
    serve_errors.BackPressureError,
)
RECONNECTING = "Reconnecting to the translation service…"
#: How long a call keeps being retried before the person is told the service is down (a replica restart on a
#: loaded machine takes tens of seconds).
RETRY_FOR_S = 120.0
RETRY_PAUSE_S = 0.25
#: One outage can fail several calls of a session in a row (until Serve stops routing to the dead replica): the
#: session shows at most one notice in this long.
NOTICE_EVERY_S = 30.0


@dataclass
class ReplicaStats:
    """What one front end has seen of one replica (the status panel's row)."""

    replica: str
    pid: int = 0
    calls: int = 0
    failures: int = 0  # calls sent to it that failed because it went away
    ongoing_calls: int = 0
    total_run_s: float = 0.0
    total_rows: int = 0
    last_seen: float = field(default_factory=time.time)

    @property
    def mean_latency_s(self) -> float:
        return self.total_run_s / self.calls if self.calls else 0.0

    @property
    def mean_batch_rows(self) -> float:
        return self.total_rows / self.calls if self.calls else 0.0


class ReplicaPool:
    """One per front end process: the Serve handle, retries, and the replicas seen so far."""

    def __init__(
        self, handle: DeploymentHandle, translator: Translator, head: Head, retry_for_s: float = RETRY_FOR_S
    ) -> None:
        self._handle = handle
        self.head = head
        self.translator = translator  # local: tokenizer, language checks (no model pass runs here)
        self.retry_for_s = retry_for_s
        self._lock = threading.Lock()
        self._replicas: dict[str, ReplicaStats] = {}
        self.retries = 0  # calls sent again after a replica went away (for the tests and the panel)
        self.resends = 0  # calls sent again with their encoder state (the replica did not hold it)

    def session(self, key: str, priority: Priority = Priority.LIVE) -> RemoteSession:
        return RemoteSession(self, key, priority)

    def file_translator(self, key: str) -> PoolTranslator:
        return PoolTranslator(self, key)

    def close(self) -> None:
        """Disconnect (and stop a head started by this front end, with its replicas)."""
        stop(self.head)

    def replicas(self) -> list[ReplicaStats]:
        with self._lock:
            return sorted((ReplicaStats(**vars(r)) for r in self._replicas.values()), key=lambda r: r.replica)

    # ---- calls --------------------------------------------------------------------------------------------------

    def call(self, method: str, *args, state: WireState | None = None, notify: Callable[[str], None] | None = None):
        """``method`` on some replica; ``state`` (if any) is named first and carried on a miss. Retries while no
        replica answers, calling ``notify`` once per outage."""
        deadline = time.monotonic() + self.retry_for_s
        carried, notified = False, False
        while True:
            state_arg = () if state is None else ((state.ref, state if carried else None),)
            try:
                handle = self._handle.options(method_name=method, session_id=args[0])  # the key: its replica
                reply = handle.remote(args[0], *state_arg, *args[1:]).result()
            except RETRYABLE as e:
                self.retries += 1
                if notify is not None and not notified:
                    notify(RECONNECTING)
                    notified = True
                if time.monotonic() > deadline:
                    raise PoolUnavailableError("The translation service is unavailable; try again shortly.") from e
                log.warning("model call %s failed (%s); sending it again", method, type(e).__name__)
                time.sleep(RETRY_PAUSE_S)
                continue
            self._record(reply.stamp, isinstance(reply, Reply))
            if isinstance(reply, Missing):
                self.resends += 1
                carried = True  # another replica: send the state itself this time
                continue
            return reply.value

    def _record(self, stamp: Stamp, answered: bool) -> None:
        with self._lock:
            stats = self._replicas.setdefault(stamp.replica, ReplicaStats(stamp.replica))
            stats.pid, stats.ongoing_calls, stats.last_seen = stamp.pid, stamp.ongoing_calls, time.time()
            if answered:
                stats.calls += 1
                stats.total_run_s += stamp.run_s
                stats.total_rows += stamp.batch_rows


@dataclass
class PendingState:
    """A live step's encoder state as the session holds it: the step's audio until a replica has encoded it, then
    that replica's :class:`cluster.wire.WireState`.

    Why lazy: a step encodes and then continues; sending the audio with the first continuation makes that one round
    trip instead of two (on a busy machine each round trip costs tens of milliseconds of waking threads up)."""

    audio: np.ndarray
    wire: WireState | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # one first call per state


class RemoteSession:
    """:class:`engine.backend.StreamingBackend` over the pool, for one session (same key on every replica)."""

    def __init__(self, pool: ReplicaPool, key: str, priority: Priority = Priority.LIVE) -> None:
        self._pool, self._key, self._priority = pool, key, priority
        self._translator = pool.translator
        self._notices: list[str] = []
        self._noticed_at = -NOTICE_EVERY_S

    def _notify(self, message: str) -> None:
        if time.monotonic() - self._noticed_at >= NOTICE_EVERY_S:
            self._noticed_at = time.monotonic()
            self._notices.append(message)

    def take_notices(self) -> list[str]:
        """Notices since the last call (the session shows them as :class:`engine.stream_events.Notice`)."""
        notices, self._notices = self._notices, []
        return notices

    def _call(self, method: str, *args, state: WireState | None = None):
        return self._pool.call(method, self._key, *args, state=state, notify=self._notify)

    def encode(self, audio: np.ndarray) -> PendingState:
        return PendingState(np.asarray(audio, dtype=np.float32))  # sent with the step's first continuation

    def continue_text(
        self, state: PendingState, tgt_lang: str, prefix: Sequence[int], max_new_tokens: int, banned_words=()
    ) -> list[int]:
        args = (tgt_lang, list(prefix), max_new_tokens, tuple(banned_words))
        with state.lock:
            if state.wire is None:
                state.wire, tokens = self._call("encode_and_continue", state.audio, *args)
                return tokens
        return self._call("continue_text", *args, state=state.wire)

    def speak(
        self, state: PendingState, tgt_lang: str, committed: Sequence[int], new_count: int, speaker_id: int | None
    ) -> np.ndarray:
        with state.lock:
            if state.wire is None:  # spoken before any continuation (not a live step's order, but allowed)
                state.wire = self._call("encode", state.audio)
        return self._call("speak", tgt_lang, list(committed), new_count, speaker_id, state=state.wire)

    def starts_word(self, token_id: int) -> bool:
        return self._translator.starts_word(token_id)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._translator.detokenize(tokens)


class PoolTranslator:
    """The part of :class:`engine.translator.Translator` that file and text requests use
    (:func:`engine.file_translation.translate_recording`, :func:`engine.mitigation.check_texts`),
    with the model passes on the pool. Checks and tokenizer work stay local."""

    def __init__(self, pool: ReplicaPool, key: str) -> None:
        self._pool, self._key, self._local = pool, key, pool.translator

    def __getattr__(self, name: str):  # check_target, check_source_text, banned_ids, detokenize, loaded, …
        return getattr(self._local, name)

    def encode_speech(self, waveforms: Sequence[np.ndarray]) -> WireState:
        if len(waveforms) != 1:
            raise ValueError("the pool encodes one recording segment per call")
        return self._pool.call("encode_speech", self._key, np.asarray(waveforms[0], dtype=np.float32))

    def encode_text(self, texts: Sequence[str], src_lang: str) -> WireState:
        return self._pool.call("encode_text", self._key, list(texts), src_lang)

    def decode(
        self, encoded: WireState, task: Task, tgt_lang: str, speaker_id: int | None = None, bad_words_ids=None
    ) -> list[TranslationResult]:
        return self._pool.call("decode", self._key, Task(task).value, tgt_lang, speaker_id, bad_words_ids,
                               state=encoded)  # fmt: skip

    def speak_decoded(
        self, encoded: WireState, results: Sequence[TranslationResult], speaker_id: int | None = None
    ) -> list[TranslationResult]:
        return self._pool.call("speak_decoded", self._key, list(results), speaker_id, state=encoded)

    def translate(self, inputs, task: Task, tgt_lang: str, src_lang: str | None = None, speaker_id=None):
        """Text inputs only (the safety stage's gender alternative)."""
        task = Task(task)
        if task.speech_input:
            raise ValueError("the pool translates recordings segment by segment (encode_speech, decode)")
        encoded = self.encode_text([str(t) for t in inputs], self._local.check_source_text(src_lang))
        return self.decode(encoded, task, self._local.check_target(tgt_lang, task.speech_output), speaker_id)
