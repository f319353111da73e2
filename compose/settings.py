"""Every setting of Parley, read once at the entry point from defaults, environment variables and flags.

``Settings`` nests one frozen dataclass per package (engine, streaming, expressive, safety, watermark, web, limits).
Each field is set by the environment variable ``PARLEY_<FIELD>`` (or the one its metadata names, e.g.
``HF_HUB_OFFLINE``) and by the flag ``--field-name`` (or the one its metadata names); flags win. This is the only
module that reads ``os.environ``; every front end builds its parser with :func:`add_arguments`, so the same thing
has the same name in ``python app.py --help``, ``python app.py --desktop --help`` and ``python app.py translate
--help``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.options import EngineOptions
from engine.presets import PRESETS
from engine.scheduler_options import SchedulerOptions

ENV_PREFIX = "PARLEY_"
WATERMARK_BACKENDS = ("builtin", "audiowmark", "audioseal")
BACKENDS = ("local", "ray")


def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


@dataclass(frozen=True)
class StreamingSettings:
    #: Latency preset of live translation when the person does not choose one.
    preset: str = field(default="balanced", metadata=_help("live latency preset", choices=tuple(PRESETS)))
    #: Sample rates a live chunk may have, in Hz.
    min_rate_hz: int = field(default=8_000, metadata=_help("lowest live sample rate (Hz)"))
    max_rate_hz: int = field(default=192_000, metadata=_help("highest live sample rate (Hz)"))
    #: Longest live chunk, in seconds of audio.
    max_chunk_s: float = field(default=5.0, metadata=_help("longest live chunk (s)"))

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, not {self.preset!r}")


@dataclass(frozen=True)
class ExpressiveSettings:
    #: Keep the speaker's pauses, pace, pitch, loudness and voice in translated speech (the default everywhere).
    expressive: bool = field(default=True, metadata=_help("keep the speaker's pauses, pace, pitch, loudness, voice"))


@dataclass(frozen=True)
class SafetySettings:
    #: Run the added-toxicity and gender-bias checks on every output.
    safety: bool = field(default=True, metadata=_help("toxicity and gender-bias checks on every output"))
    #: Also mask offensive words the speaker said (off: reported, not censored).
    filter_toxicity: bool = field(default=False, metadata=_help("also mask offensive words the speaker said"))
    #: A folder of NLLB Toxicity-200 word lists (``<lang>.txt``) added to the bundled lists.
    toxicity_dir: Path | None = field(default=None, metadata=_help("folder of NLLB Toxicity-200 word lists"))
    #: Offer the other gender's translation when the source leaves a person's gender open (file and text).
    gender_alternatives: bool = field(default=True, metadata=_help("offer the other gender's translation"))


@dataclass(frozen=True)
class WatermarkSettings:
    #: Which watermark marks every synthetic sample.
    watermark_backend: str = field(default="builtin", metadata=_help("watermark backend", choices=WATERMARK_BACKENDS))
    #: The deployment's secret key; unset: a public development key (a warning is logged). Set it on any real server.
    watermark_key: str | None = field(default=None, metadata=_help("watermark secret key (set it on real servers)"))
    #: Who runs this server, carried in every watermark (16 bits).
    deployment_id: int = field(default=0, metadata=_help("deployment id carried in every watermark (16 bits)"))
    #: The audiowmark backend's binary (None: ``audiowmark`` on PATH), key file, ``--strength`` and speed search.
    audiowmark_binary: str | None = field(default=None, metadata=_help("audiowmark binary"))
    audiowmark_key_file: Path | None = field(default=None, metadata=_help("audiowmark key file"))
    audiowmark_strength: float | None = field(default=None, metadata=_help("audiowmark --strength"))
    audiowmark_detect_speed: bool = field(default=False, metadata=_help("audiowmark --detect-speed when reading"))
    #: The AudioSeal backend's generator and detector checkpoints on local disk.
    audioseal_generator: Path | None = field(default=None, metadata=_help("AudioSeal generator checkpoint"))
    audioseal_detector: Path | None = field(default=None, metadata=_help("AudioSeal detector checkpoint"))

    def __post_init__(self) -> None:
        if self.watermark_backend not in WATERMARK_BACKENDS:
            raise ValueError(f"watermark_backend must be one of {', '.join(WATERMARK_BACKENDS)}")
        if not 0 <= self.deployment_id < 1 << 16:
            raise ValueError("deployment_id must fit in 16 bits")


@dataclass(frozen=True)
class WebSettings:
    #: Address the web app listens on.
    host: str = field(default="127.0.0.1", metadata=_help("address to serve on"))
    #: Port of the web app.
    port: int = field(default=7860, metadata=_help("port"))
    #: Ask Gradio for a public share link.
    share: bool = field(default=False, metadata=_help("ask Gradio for a public share link"))
    #: Model-bound events that may run at once (one model, shared): 1 on CPU is fastest overall.
    concurrency_limit: int = field(default=1, metadata=_help("model-bound requests run at once"))
    #: Live streams served at once (each runs on its own thread; a stream beyond this waits in the queue).
    max_live_streams: int = field(default=16, metadata=_help("live streams served at once"))
    #: Audio a live stream may have waiting for the model, in seconds; beyond it audio is skipped, and said so.
    max_backlog_s: float = field(default=10.0, metadata=_help("live audio allowed to wait for the model (s)"))
    #: A live stream that sends nothing for this long is closed (its downloads are kept), in seconds.
    idle_timeout_s: float = field(default=60.0, metadata=_help("close a silent live stream after (s)"))
    #: Outputs (downloads, uploads' results) are deleted this long after they were written, in seconds.
    retention_s: float = field(default=3600.0, metadata=_help("keep outputs for (s)"))
    #: Longest live stream, in seconds, before it is ended.
    stream_time_limit_s: int = field(default=30 * 60, metadata=_help("longest live stream (s)"))
    #: Requests waiting in the queue before new ones are refused with a "busy" message.
    queue_max_size: int = field(default=64, metadata=_help("requests that may wait before 'busy'"))
    #: Largest upload, in MB.
    max_file_mb: int = field(default=200, metadata=_help("largest upload (MB)"))
    #: Longest text translated in one request, in characters.
    max_text_chars: int = field(default=5_000, metadata=_help("longest text per request (characters)"))
    #: Visitor sessions whose state the server keeps (each ~0.1 MB: Gradio's copy of the page's settings, a live
    #: tab's key); past it, the least recently active is forgotten. API clients never say goodbye, so without a
    #: bound their sessions would pile up.
    max_sessions: int = field(default=1_000, metadata=_help("visitor sessions kept in memory"))
    #: Rooms (one speaker, many listeners) open at once, listeners per room, languages decoded per room, and how
    #: long a room may go without the speaker's audio before it ends, in seconds.
    max_rooms: int = field(default=8, metadata=_help("rooms open at once"))
    max_room_listeners: int = field(default=50, metadata=_help("listeners per room"))
    max_room_languages: int = field(default=6, metadata=_help("languages decoded per room"))
    room_idle_timeout_s: float = field(default=300.0, metadata=_help("end a room without speaker audio after (s)"))
    #: Whether visitors may switch the shared model to the offline test model; unset: only when the server listens
    #: on this machine alone (127.0.0.1, localhost). An operator decides for a shared server.
    allow_model_switch: bool | None = field(default=None, metadata=_help("let visitors switch to the test model"))

    @property
    def model_switch_allowed(self) -> bool:
        if self.allow_model_switch is not None:
            return self.allow_model_switch
        return self.host in ("127.0.0.1", "localhost", "::1")

    def __post_init__(self) -> None:
        limits = (self.concurrency_limit, self.stream_time_limit_s, self.queue_max_size, self.max_file_mb)
        if (
            min(*limits, self.max_text_chars, self.max_live_streams, self.max_sessions) < 1
            or min(self.max_rooms, self.max_room_listeners, self.max_room_languages) < 1
            or min(self.max_backlog_s, self.idle_timeout_s, self.retention_s, self.room_idle_timeout_s) <= 0
        ):
            raise ValueError("web limits must be positive")


@dataclass(frozen=True)
class ClusterSettings:
    """Where the model runs: in this process (``local``), or on a pool of Ray Serve replicas (``ray``, the optional
    ``cluster`` package) that any number of front ends share."""

    #: ``local``: this process loads the model; ``ray``: model calls go to the replicas of a Ray Serve application.
    backend: str = field(default="local", metadata=_help("where the model runs", choices=BACKENDS))
    #: The Ray cluster to join (``auto``, ``HOST:PORT``); unset: start a local head on 127.0.0.1 (stopped on exit).
    ray_address: str | None = field(default=None, metadata=_help("Ray cluster address (unset: start one here)"))
    #: The Serve application holding the replicas; front ends with the same name share them.
    ray_app_name: str = field(default="parley", metadata=_help("Ray Serve application name"))
    #: Replicas when not autoscaling; each loads the model once and batches every call that reaches it.
    replicas: int = field(default=1, metadata=_help("model replicas (when not autoscaling)"))
    #: Autoscaling bounds (both set: autoscale between them on ongoing calls per replica).
    min_replicas: int | None = field(default=None, metadata=_help("autoscaling: fewest replicas"))
    max_replicas: int | None = field(default=None, metadata=_help("autoscaling: most replicas"))
    #: Autoscaling target: model calls waiting or running per replica.
    target_ongoing_requests: float = field(default=8.0, metadata=_help("autoscaling: ongoing calls per replica"))
    #: Every call of one session goes to the same replica (Serve's consistent-hash router on the session key), so
    #: the encoder state a step's first call left there is found by the next; off: each call to the least busy of
    #: two replicas picked at random (a state then often has to be sent again).
    session_affinity: bool = field(default=True, metadata=_help("send a session's calls to one replica"))
    #: CPUs and GPUs Ray reserves for each replica (fractions share a device).
    replica_num_cpus: float = field(default=1.0, metadata=_help("CPUs reserved per replica"))
    replica_num_gpus: float = field(default=0.0, metadata=_help("GPUs reserved per replica"))
    #: Ports of a local head's dashboard and Prometheus metrics, both on 127.0.0.1 (0: no dashboard).
    ray_dashboard_port: int = field(default=8265, metadata=_help("local Ray head's dashboard port (0: none)"))
    ray_metrics_port: int = field(default=8266, metadata=_help("local Ray head's Prometheus metrics port"))

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if (self.min_replicas is None) != (self.max_replicas is None):
            raise ValueError("set both min_replicas and max_replicas to autoscale, or neither")
        low = self.replicas if self.min_replicas is None else self.min_replicas
        high = self.replicas if self.max_replicas is None else self.max_replicas
        if not 1 <= low <= high or self.target_ongoing_requests <= 0:
            raise ValueError("replicas must be at least 1 (and min_replicas at most max_replicas)")
        if self.replica_num_cpus < 0 or self.replica_num_gpus < 0:
            raise ValueError("replica_num_cpus and replica_num_gpus must not be negative")

    @property
    def autoscaling(self) -> bool:
        return self.min_replicas is not None


@dataclass(frozen=True)
class Settings:
    engine: EngineOptions = field(default_factory=EngineOptions)
    streaming: StreamingSettings = field(default_factory=StreamingSettings)
    expressive: ExpressiveSettings = field(default_factory=ExpressiveSettings)
    safety: SafetySettings = field(default_factory=SafetySettings)
    watermark: WatermarkSettings = field(default_factory=WatermarkSettings)
    web: WebSettings = field(default_factory=WebSettings)
    scheduler: SchedulerOptions = field(default_factory=SchedulerOptions)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)


#: The sections each front end shows (the CLI and desktop have no web server).
SECTIONS: dict[str, str] = {
    "engine": "model",
    "streaming": "live translation",
    "expressive": "expressive speech",
    "safety": "safety",
    "watermark": "watermark",
    "web": "web server",
    "scheduler": "serving many people",
    "cluster": "model pool (Ray Serve)",
}
WEB = tuple(SECTIONS)
DESKTOP = ("engine", "streaming", "expressive", "safety", "watermark", "cluster")
CLI = ("engine", "expressive", "safety", "watermark", "cluster")


def _section_types() -> dict[str, type]:
    hints = typing.get_type_hints(Settings)
    return {name: hints[name] for name in SECTIONS}


def _flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag", "--" + f.name.replace("_", "-"))


def _env_name(f: dataclasses.Field) -> str:
    return f.metadata.get("env", ENV_PREFIX + f.name.upper())


def _base_type(hint: Any) -> type:
    """``int | None`` → int; ``Path`` → Path."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


def _parse(kind: type, raw: str, name: str) -> Any:
    if kind is bool:
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"{name} must be a yes/no value, not {raw!r}")
    if kind is Path:
        return Path(raw).expanduser()
    try:
        return kind(raw)
    except ValueError as e:
        raise ValueError(f"{name} must be a {kind.__name__}, not {raw!r}") from e


def add_arguments(parser: argparse.ArgumentParser, sections: Iterable[str] = WEB) -> None:
    """One argument group per section; defaults stay None so that unset flags leave the environment's value."""
    for name in sections:
        cls = _section_types()[name]
        hints = typing.get_type_hints(cls)
        group = parser.add_argument_group(SECTIONS[name])
        for f in dataclasses.fields(cls):
            kind = _base_type(hints[f.name])
            default = f.default if f.default is not dataclasses.MISSING else None
            help_text = f"{f.metadata.get('help', '')} (env {_env_name(f)}; default: {default})"
            if kind is bool:
                group.add_argument(_flag(f), dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                                   help=help_text)  # fmt: skip
            else:
                group.add_argument(_flag(f), dest=f.name, type=kind, default=None, metavar=f.name.upper(),
                                   choices=f.metadata.get("choices"), help=help_text)  # fmt: skip


def host_variables(names: Iterable[str], environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """Which of ``names`` the host set in the environment (variables that another library reads itself, such as
    glibc's heap variables: :mod:`ui.heap` leaves those alone)."""
    environ = os.environ if environ is None else environ
    return frozenset(name for name in names if name in environ)


def load_settings(args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, then the environment, then the flags that were given. Raises ValueError in plain words."""
    environ = os.environ if environ is None else environ
    sections = {}
    for name, cls in _section_types().items():
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(_env_name(f))
            if raw is not None and raw != "":
                values[f.name] = _parse(_base_type(hints[f.name]), raw, _env_name(f))
            given = getattr(args, f.name, None) if args is not None else None
            if given is not None:
                values[f.name] = given
        if cls is EngineOptions and "cache_dir" not in values and environ.get("XDG_CACHE_HOME"):
            values["cache_dir"] = Path(environ["XDG_CACHE_HOME"]) / "parley"
        sections[name] = cls(**values)
    return Settings(**sections)
