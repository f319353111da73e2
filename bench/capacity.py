"""Capacity benchmark: many live streams, uploads and text requests on one model, scheduler batching on vs off.

N live streams (N = 1, 2, 4, 8, 16, then 24 and 32) run in real time on their own threads: espeak-ng speech with
pauses, sent as a browser does (0.5 s chunks of int16 at 48 kHz, one every 0.5 s of wall time; stream i starts
i/N of a chunk after the first, as people do not start speaking in step; ``--aligned``: all at once), each through a
:class:`engine.streaming.StreamingSession` on its own :class:`engine.scheduler.SessionBackend`. Beside them M
uploads (speech→speech, segment by segment, file priority) and text requests (text→text) go through the same
scheduler. A stream's lag after a chunk is how far its processed audio trails the speaker: wall time since the
stream began minus the seconds of speech handled; each stream tells its session that lag before each chunk (as
a background stream does), so a trailing session coarsens its steps. Each N runs with batching on and then off,
printed side by side in one row; past 16 streams the unbatched side runs only while it still kept every stream.

Capacity is the most streams that all stay within the lag bound; the issue's ratio target compares the two sides'
capacities (a sum of streams kept over N = 1...16 cannot pass 31/15 = 2.1 once the unbatched side keeps 8).

    flock /tmp/parley-cpu.lock .venv/bin/python bench/capacity.py    # tiny model, 4 to 10 minutes on 2 cores
    flock /tmp/parley-fullsize.lock .venv/bin/python bench/capacity.py --size full   # ~12 GB, a few minutes

The issue's targets are printed under the table (tiny model: 8 streams + 4 uploads). With ``--size full`` (the
full-size architecture, random weights) it measures what batching buys per decoder step: one greedy step with KV
cache for 1 and for 8 rows (10 s of encoder frames each, 8 forced prefix tokens), and the speech encoder on 10 s,
at int8, fp32 and bf16; live streams are not run at full size unless ``--streams`` is given (one 2-core CPU cannot
keep even one in real time).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from bench.engine import release_memory
from bench.full_model import full_size_random
from bench.streaming import BROWSER_RATE_HZ, CHUNK_S, SENTENCES, browser_chunks, speak
from engine.audio import SAMPLE_RATE_HZ
from engine.batched_decoding import DecodeRow, GreedyBatch
from engine.models import load_model
from engine.options import EngineOptions
from engine.precision import choose_precision
from engine.scheduler import InferenceScheduler, SchedulerOptions
from engine.scheduler_calls import Kind, Priority, speech_features
from engine.streaming import StepsCoarsened, StreamingSession
from engine.tasks import Task
from engine.translator import Translator
from engine.vad import StreamingVad, load_vad_model

TARGETS = ("spa", "fra", "deu", "cmn")
#: Encoder frames of 10 s of speech after the adaptor's subsampling (what a decoder step attends to).
STEP_FRAMES = 63
#: The issue's largest N: up to it both sides always run.
ISSUE_MAX_N = 16
TEXTS = ("Where is the station?", "The meeting starts at nine.", "Thank you for your help today.")


@dataclass
class Run:
    """What one configuration measured (filled by the worker threads)."""

    lags_s: list[list[float]] = field(default_factory=list)  # per stream, one lag per chunk
    upload_s: list[float] = field(default_factory=list)
    text_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    continue_rows: list[int] = field(default_factory=list)
    strides: list[int] = field(default_factory=list)  # per stream, the coarsest step stride it took
    busy_s: dict[str, float] = field(default_factory=dict)  # the worker's model time per kind of call
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, error: Exception) -> None:
        with self.lock:
            self.errors.append(f"{type(error).__name__}: {error}")


def speech_with_pauses(folder: Path, speech_s: float, voice: int) -> np.ndarray:
    """About ``speech_s`` seconds: sentences with 0.6-1.2 s pauses, a different order per stream."""
    pieces, total = [], 0.0
    for k in range(len(SENTENCES) * 4):
        utt = speak(SENTENCES[(voice + k) % len(SENTENCES)], folder, voice * 100 + k, speed_wpm=140 + 7 * voice)
        pause = np.zeros(int((0.6 + 0.2 * ((voice + k) % 4)) * SAMPLE_RATE_HZ), np.float32)
        pieces += [utt, pause]
        total += (utt.size + pause.size) / SAMPLE_RATE_HZ
        if total >= speech_s:
            break
    return np.concatenate(pieces)[: int(speech_s * SAMPLE_RATE_HZ)]


def live(scheduler, vad_model, chunks: list[np.ndarray], tgt: str, key: int, run: Run, phase_s: float) -> None:
    session = StreamingSession(scheduler.session(key), StreamingVad.for_new_stream(vad_model), tgt, preset="low")
    time.sleep(phase_s)
    lags, strides, began = [], [1], time.perf_counter()
    try:
        for k, chunk in enumerate(chunks):
            time.sleep(max(0.0, began + (k + 1) * CHUNK_S - time.perf_counter()))  # spoken by then
            session.pace(max(0.0, time.perf_counter() - began - (k + 1) * CHUNK_S))  # as a background stream does
            events = session.push(chunk, BROWSER_RATE_HZ)
            strides += [round(e.step_s / session.preset.step_s) for e in events if isinstance(e, StepsCoarsened)]
            lags.append(time.perf_counter() - began - (k + 1) * CHUNK_S)
        session.finish()
    except Exception as e:  # counted, not raised: the table reports errors
        run.fail(e)
    with run.lock:
        run.lags_s.append(lags)
        run.strides.append(max(strides))


def upload(scheduler, segments: list[np.ndarray], key: str, run: Run) -> None:
    started = time.perf_counter()
    try:
        for segment in segments:
            scheduler.translate([segment], Task.S2ST, "spa", key=key, priority=Priority.FILE)
    except Exception as e:
        run.fail(e)
    run.upload_s.append(time.perf_counter() - started)


def texts(scheduler, key: str, run: Run, every_s: float, count: int) -> None:
    for i in range(count):
        time.sleep(every_s)
        started = time.perf_counter()
        try:
            scheduler.translate(
                [TEXTS[i % len(TEXTS)]], Task.T2TT, "fra", src_lang="eng", key=key, priority=Priority.LIVE
            )
        except Exception as e:
            run.fail(e)
        run.text_s.append(time.perf_counter() - started)


def phase(i: int, n: int, aligned: bool) -> float:
    """When stream ``i`` of ``n`` starts, in seconds after the first: spread over one chunk, or all at once."""
    return 0.0 if aligned else i * CHUNK_S / n


def one_run(translator, vad_model, streams, uploads, n: int, m: int, batching: bool, aligned: bool) -> Run:
    run = Run()
    options = SchedulerOptions(batching=batching, max_batch_rows=16)
    with InferenceScheduler(translator, options) as scheduler:
        duration_s = len(streams[0]) * CHUNK_S
        threads = [
            threading.Thread(
                target=live,
                args=(scheduler, vad_model, streams[i % len(streams)], TARGETS[i % 4], i, run, phase(i, n, aligned)),
            )
            for i in range(n)
        ]
        threads += [threading.Thread(target=upload, args=(scheduler, uploads, f"up{j}", run)) for j in range(m)]
        threads += [threading.Thread(target=texts, args=(scheduler, "text", run, duration_s / 4, 3))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        run.continue_rows = list(scheduler.batch_sizes[Kind.CONTINUE])
        run.busy_s = {k.value: round(v, 1) for k, v in scheduler.busy_s.items()}
    return run


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def stream_p95s(run: Run) -> list[float]:
    return [p(lags, 95) for lags in run.lags_s if lags]


def kept(run: Run, bound_s: float) -> int:
    """Streams whose p95 lag stays within the bound (kept at real time)."""
    return sum(v <= bound_s for v in stream_p95s(run))


def capacity(results: dict[tuple[int, bool], Run], batching: bool, bound_s: float) -> int:
    """The most streams run on one side that all stayed within the bound, with every smaller N run also kept."""
    best = 0
    for n in sorted(k[0] for k in results if k[1] is batching):
        if kept(results[n, batching], bound_s) < n:
            break
        best = n
    return best


def main() -> None:
    if sys.argv[1:3] == ["--backend", "ray"]:  # local beside the Ray pool: bench/capacity_ray.py (--replicas 1,2)
        from bench.capacity_ray import main as ray_main

        return ray_main(sys.argv[3:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["tiny", "full"], default="tiny")
    parser.add_argument("--precision", default="auto", help="tiny model only (full size: int8, fp32, bf16)")
    parser.add_argument(
        "--streams", help="comma-separated N (default 1,2,4,8,16,24,32 on the tiny model, none at full size)"
    )
    parser.add_argument("--aligned", action="store_true", help="every stream starts at once (default: spread)")
    parser.add_argument("--uploads", type=int, default=4, help="M file uploads beside the streams")
    parser.add_argument("--speech-s", type=float, default=16.0, help="length of each live stream")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (on a shared 2-core box 2 threads spin)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        audio = [speech_with_pauses(Path(tmp), args.speech_s, v) for v in range(16)]
        segments = [speak(s, Path(tmp), 9000 + i) for i, s in enumerate(SENTENCES[:3])]
    streams = [browser_chunks(a) for a in audio]
    options = EngineOptions(model="tiny", device="cpu", precision=args.precision, cpu_threads=args.threads)
    loaded = load_model(options)
    streams_n = args.streams or ("1,2,4,8,16,24,32" if args.size == "tiny" else "")
    if args.size == "full":
        stage_table(loaded, audio[0])
        if not streams_n:
            return
        loaded = full_size_random(loaded)
    translator, vad_model = Translator(loaded, options), load_vad_model()
    print(f"model: {loaded.name}, precision {loaded.precision.status}, {args.threads} torch threads; "
          f"{args.speech_s:.0f} s per stream, "
          f"{args.uploads} uploads of {len(segments)} segments, 3 text requests")  # fmt: skip

    results: dict[tuple[int, bool], Run] = {}
    bound = None
    print_header()
    off_keeps = True  # the unbatched side kept every stream so far
    for n in [int(x) for x in streams_n.split(",")]:
        for batching in (True, False):
            if batching or n <= ISSUE_MAX_N or off_keeps:
                run = one_run(translator, vad_model, streams, segments, n, args.uploads, batching, args.aligned)
                results[n, batching] = run
        bound = lag_bound(results[n, True]) if bound is None else bound  # from the first (single) stream
        off_keeps = (n, False) in results and kept(results[n, False], bound) == n
        print_pair(n, results[n, True], results.get((n, False)), bound)
    print_targets(results, bound, args.uploads)


def step_ms(model: torch.nn.Module, rows: int, repeats: int = 4) -> float:
    """Median milliseconds of one greedy decoder step with KV cache for ``rows`` rows (after the prompt's pass)."""
    hidden = model.config.hidden_size
    encoder = torch.randn(STEP_FRAMES, hidden, generator=torch.Generator().manual_seed(0)).to(model.dtype)
    row = DecodeRow(encoder, "spa", tuple(range(10, 18)), max_new_tokens=repeats + 2)
    batch = GreedyBatch(model, [row] * rows)
    batch.step()  # the prompt
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        batch.step()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def step_pair_ms(model: torch.nn.Module, pairs: int = 5) -> tuple[float, float]:
    """Median 1-row and 8-row step times, measured in alternation so a change in the machine's load moves both."""
    one, eight = [], []
    for _ in range(pairs):
        one.append(step_ms(model, 1))
        eight.append(step_ms(model, 8))
    return statistics.median(one), statistics.median(eight)


@torch.inference_mode()
def encoder_s(loaded, features: tuple[torch.Tensor, torch.Tensor], repeats: int = 2) -> float:
    """Median seconds of one speech-encoder pass over ``features`` (10 s of speech)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        loaded.model.speech_encoder(input_features=features[0].to(loaded.model.dtype), attention_mask=features[1])
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def stage_table(tiny, speech: np.ndarray) -> None:
    """Full-size stages per precision (int8, then fp32 cast to bf16 in place): the speech encoder on 10 s and one
    decoder step for 1 and 8 rows, in one run, so the per-stage choice of ``auto`` can be read off one table."""
    translator = Translator(tiny)
    features = speech_features(translator, speech[: 10 * SAMPLE_RATE_HZ])
    print(f"full-size architecture, {torch.get_num_threads()} torch threads; speech encoder on 10 s, and one "
          "decoder step with KV cache:")  # fmt: skip
    print(f"{'precision':>10} {'encoder s':>9} {'1 row ms':>9} {'8 rows ms':>10} {'per row ms':>10} {'8 / 1':>6}")
    figures = {}

    def measure(precision: str, loaded) -> None:
        figures[precision] = encoder_s(loaded, features), *step_pair_ms(loaded.model)
        encoder, one, eight = figures[precision]
        print(f"{precision:>10} {encoder:>9.2f} {one:>9.0f} {eight:>10.0f} {eight / 8:>10.0f} {eight / one:>6.2f}",
              flush=True)  # fmt: skip

    measure("int8", full_size_random(tiny, quantize=True))  # first: building it needs an fp32 copy beside it
    release_memory()
    loaded = full_size_random(tiny)
    measure("fp32", loaded)
    loaded.model.to(torch.bfloat16)
    measure("bf16", loaded)
    for stage, column in (("encoder", 0), ("lone decoder step", 1), ("8-row decoder step", 2)):
        fastest = min(figures, key=lambda k: figures[k][column])
        print(f"fastest for the {stage}: {fastest}")
    auto = choose_precision("auto", torch.device("cpu")).precision
    fastest_one = min(one for _, one, _ in figures.values())
    ratio = figures[auto][2] / fastest_one
    print(f"auto here: {choose_precision('auto', torch.device('cpu')).status}")
    print(f"target: 8 rows at {auto} (auto) = {figures[auto][2]:.0f} ms vs the fastest single-row step "
          f"{fastest_one:.0f} ms: {ratio:.2f}x (target <= 1.5x): {'met' if ratio <= 1.5 else 'NOT met'}")  # fmt: skip


def lag_bound(single: Run) -> float:
    """The issue's lag bound: 1.5 x the single-stream p95 (at least one chunk)."""
    return max(1.5 * p([v for lags in single.lags_s for v in lags], 95), CHUNK_S)


SIDE = ("lag p50", "lag p95", "kept", "err", "rows", "coarse", "upload s", "text s")


def side(run: Run, n: int, bound: float) -> list[str]:
    """One configuration's cells: lags, streams kept within the bound, errors, decode rows (mean/max), streams
    that coarsened their steps (and the coarsest stride), mean upload time and the slowest text request."""
    lags = [v for lags in run.lags_s for v in lags]
    rows = run.continue_rows or [0]
    coarse = f"{sum(s > 1 for s in run.strides)}/{n} x{max(run.strides, default=1)}"
    return [f"{p(lags, 50):.2f}", f"{p(lags, 95):.2f}", f"{kept(run, bound)}/{n}", str(len(run.errors)),
            f"{statistics.mean(rows):.1f}/{max(rows)}", coarse, f"{statistics.mean(run.upload_s or [0]):.1f}",
            f"{max(run.text_s or [0]):.2f}"]  # fmt: skip


WIDTHS = [max(len(h), 7) for h in SIDE]


def print_header() -> None:
    half = sum(WIDTHS) + len(WIDTHS) - 1
    print(f"\n{'':>3} | {'batching on':^{half}} | {'batching off':^{half}}")
    header = " ".join(f"{h:>{w}}" for h, w in zip(SIDE, WIDTHS, strict=True))
    print(f"{'N':>3} | {header} | {header}")


def print_pair(n: int, on: Run, off: Run | None, bound: float) -> None:
    """One row of the table: batching on and off side by side for N streams (off not run: dashes)."""
    cells = [
        " ".join(f"{c:>{w}}" for c, w in zip(side(r, n, bound) if r else ["-"] * len(SIDE), WIDTHS, strict=True))
        for r in (on, off)
    ]
    print(f"{n:>3} | {cells[0]} | {cells[1]}", flush=True)
    for error in sorted(set(on.errors + (off.errors if off else [])))[:3]:
        print(f"    error: {error}")


def print_targets(results: dict[tuple[int, bool], Run], bound: float, uploads: int) -> None:
    if (1, True) not in results or (8, True) not in results:
        return
    eight_on = results[8, True]
    p95_on = p([v for lags in eight_on.lags_s for v in lags], 95)
    print(f"\n'kept': streams whose p95 lag is within 1.5 x the single-stream p95 = {bound:.2f} s")
    print(f"targets (8 streams + {uploads} uploads):")
    print(f"  errors: {len(eight_on.errors)} (target 0)")
    print(f"  p95 lag: {p95_on:.2f} s vs bound {bound:.2f} s: {'met' if p95_on <= bound else 'NOT met'}")
    on_cap, off_cap = capacity(results, True, bound), capacity(results, False, bound)
    ratio = on_cap / off_cap if off_cap else float("inf")
    most = max(n for n, _ in results)
    more = f" (the most run: {most}, so at least)" if on_cap == most else ""
    print(f"  capacity, the most streams all kept at real time: on {on_cap}{more}, off {off_cap} "
          f"(ratio {ratio:.1f}, target >= 4)")  # fmt: skip
    print(f"  worker busy s at N=8, on: {eight_on.busy_s}")


if __name__ == "__main__":
    main()
