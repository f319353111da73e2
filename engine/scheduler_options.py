"""The scheduler's settings, apart from the scheduler so that reading settings imports no model code."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SchedulerOptions:
    """The scheduler's settings; each field's ``help`` metadata is its flag's help text (``compose.settings`` reads
    ``PARLEY_<FIELD>`` and ``--field-name`` for it, as for :class:`engine.options.EngineOptions`)."""

    #: How long the worker waits for more calls of the same kind before it starts a batch, in milliseconds.
    wait_window_ms: float = field(default=5.0, metadata={"help": "how long a batch waits for more calls (ms)"})
    #: Most rows in one model pass (bounds memory: the KV cache grows with rows × tokens).
    max_batch_rows: int = field(default=8, metadata={"help": "most rows in one model pass"})
    #: Most calls waiting at once; one more is refused with SchedulerBusyError.
    max_queued_calls: int = field(default=256, metadata={"help": "most queued model calls before 'busy'"})
    #: While live rows decode, a file segment's decode advances one step per this many live steps.
    live_steps_per_file_step: int = field(default=4, metadata={"help": "live decode steps per file decode step"})
    #: False runs every call alone (the capacity bench's baseline); the scheduling order is the same.
    batching: bool = field(default=True, metadata={"help": "batch model calls across sessions"})

    def __post_init__(self) -> None:
        if self.wait_window_ms < 0:
            raise ValueError("wait_window_ms must not be negative")
        if self.max_batch_rows < 1 or self.max_queued_calls < 1 or self.live_steps_per_file_step < 1:
            raise ValueError("max_batch_rows, max_queued_calls and live_steps_per_file_step must be at least 1")
