"""Capacity benchmark: many live streams, uploads and text requests on one model, scheduler batching on vs off.

N live streams (N = 1, 2, 4, 8, 16) run in real time on their own threads: espeak-ng speech with pauses, sent as a
browser does (0.5 s chunks of int16 at 48 kHz, one every 0.5 s of wall time), each through a
:class:`engine.streaming.StreamingSession` on its own :class:`engine.scheduler.SessionBackend`. Beside them M
uploads (speech→speech, segment by segment, file priority) and text requests (text→text) go through the same
scheduler. A stream's lag after a chunk is how far its processed audio trails the speaker: wall time since the
stream began minus the seconds of speech handled. Each N runs with batching on and then off, side by side.

    .venv/bin/python bench/capacity.py                          # tiny model, a few minutes on 2 cores
    flock /tmp/parley-fullsize.lock .venv/bin/python bench/capacity.py --size full   # ~12 GB, a few minutes

The issue's targets are printed under the table (tiny model: 8 streams + 4 uploads). With ``--size full`` (the
full-size architecture, random weights) it measures what batching buys per decoder step: one greedy step with KV
cache for 1 and for 8 rows (10 s of encoder frames each, 8 forced prefix tokens), at fp32, bf16 and int8; live
streams are not run at full size unless ``--streams`` is given (one 2-core CPU cannot keep even one in real time).
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
from engine.scheduler_calls import Kind, Priority
from engine.streaming import StreamingSession
from engine.tasks import Task
from engine.translator import Translator
from engine.vad import StreamingVad, load_vad_model

TARGETS = ("spa", "fra", "deu", "cmn")
#: Encoder frames of 10 s of speech after the adaptor's subsampling (what a decoder step attends to).
STEP_FRAMES = 63
TEXTS = ("Where is the station?", "The meeting starts at nine.", "Thank you for your help today.")


@dataclass
class Run:
    """What one configuration measured (filled by the worker threads)."""

    lags_s: list[list[float]] = field(default_factory=list)  # per stream, one lag per chunk
    upload_s: list[float] = field(default_factory=list)
    text_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    continue_rows: list[int] = field(default_factory=list)
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


def live(scheduler, vad_model, chunks: list[np.ndarray], tgt: str, key: int, run: Run) -> None:
    session = StreamingSession(scheduler.session(key), StreamingVad.for_new_stream(vad_model), tgt, preset="low")
    lags, began = [], time.perf_counter()
    try:
        for k, chunk in enumerate(chunks):
            time.sleep(max(0.0, began + (k + 1) * CHUNK_S - time.perf_counter()))  # spoken by then
            session.push(chunk, BROWSER_RATE_HZ)
            lags.append(time.perf_counter() - began - (k + 1) * CHUNK_S)
        session.finish()
    except Exception as e:  # counted, not raised: the table reports errors
        run.fail(e)
    with run.lock:
        run.lags_s.append(lags)


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


def one_run(translator, vad_model, streams, uploads, n: int, m: int, batching: bool) -> Run:
    run = Run()
    options = SchedulerOptions(batching=batching, max_batch_rows=16)
    with InferenceScheduler(translator, options) as scheduler:
        duration_s = len(streams[0]) * CHUNK_S
        threads = [
            threading.Thread(target=live, args=(scheduler, vad_model, streams[i], TARGETS[i % 4], i, run))
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


def main() -> None:
    if sys.argv[1:3] == ["--backend", "ray"]:  # local beside the Ray pool: bench/capacity_ray.py (--replicas 1,2)
        from bench.capacity_ray import main as ray_main

        return ray_main(sys.argv[3:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["tiny", "full"], default="tiny")
    parser.add_argument("--precision", default="auto", help="tiny model only (the full size runs at fp32 and bf16)")
    parser.add_argument("--streams", help="comma-separated N (default 1,2,4,8,16 on the tiny model, none at full size)")
    parser.add_argument("--uploads", type=int, default=4, help="M file uploads beside the streams")
    parser.add_argument("--speech-s", type=float, default=16.0, help="length of each live stream")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (on a shared 2-core box 2 threads spin)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        audio = [speech_with_pauses(Path(tmp), args.speech_s, v) for v in range(16)]
        segments = [speak(s, Path(tmp), 9000 + i) for i, s in enumerate(SENTENCES[:3])]
    streams = [browser_chunks(a) for a in audio]
    options = EngineOptions(model="tiny", device="cpu", precision=args.precision)
    loaded = load_model(options)
    streams_n = args.streams or ("1,2,4,8,16" if args.size == "tiny" else "")
    if args.size == "full":
        decode_step_table(loaded)
        if not streams_n:
            return
        loaded = full_size_random(loaded)
    translator, vad_model = Translator(loaded, options), load_vad_model()
    print(f"model: {loaded.name}, precision {loaded.precision.status}, {args.threads} torch threads; "
          f"{args.speech_s:.0f} s per stream, "
          f"{args.uploads} uploads of {len(segments)} segments, 3 text requests")  # fmt: skip

    results: dict[tuple[int, bool], Run] = {}
    for n in [int(x) for x in streams_n.split(",")]:
        for batching in (True, False):
            results[n, batching] = one_run(translator, vad_model, streams, segments, n, args.uploads, batching)
            print_row(n, batching, results[n, batching])
    print_targets(results, args.uploads)


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


def decode_step_table(tiny) -> None:
    """Full-size decoder step, 1 vs 8 rows, per precision (int8, then fp32 cast to bf16 in place)."""
    print(f"full-size architecture, {torch.get_num_threads()} torch threads; one decoder step with KV cache:")
    print(f"{'precision':>10} {'1 row ms':>9} {'8 rows ms':>10} {'per row ms':>10} {'8 / 1':>6}")
    figures = {}
    quantized = full_size_random(tiny, quantize=True)  # first: building it needs the fp32 copy beside the int8 one
    figures["int8"] = step_ms(quantized.model, 1), step_ms(quantized.model, 8)
    print_step_row("int8", *figures["int8"])
    del quantized
    release_memory()
    loaded = full_size_random(tiny)
    for precision in ("fp32", "bf16"):
        if precision == "bf16":
            loaded.model.to(torch.bfloat16)
        figures[precision] = step_ms(loaded.model, 1), step_ms(loaded.model, 8)
        print_step_row(precision, *figures[precision])
    auto = choose_precision("auto", torch.device("cpu")).precision
    fastest_one = min(one for one, _ in figures.values())
    ratio = figures[auto][1] / fastest_one
    print(f"target: 8 rows at {auto} (auto) = {figures[auto][1]:.0f} ms vs the fastest single-row step "
          f"{fastest_one:.0f} ms: {ratio:.2f}x (target <= 1.5x): {'met' if ratio <= 1.5 else 'NOT met'}")  # fmt: skip


def print_step_row(precision: str, one_ms: float, eight_ms: float) -> None:
    ratio = eight_ms / one_ms
    print(f"{precision:>10} {one_ms:>9.0f} {eight_ms:>10.0f} {eight_ms / 8:>10.0f} {ratio:>6.2f}", flush=True)


def print_row(n: int, batching: bool, run: Run) -> None:
    if n == 1 and batching:
        print(f"\n{'N':>3} {'batching':>8} {'lag p50':>8} {'lag p95':>8} {'worst p95':>9} {'errors':>6} "
              f"{'rows mean':>9} {'rows max':>8} {'upload s':>8} {'text s max':>10}")  # fmt: skip
    lags = [v for lags in run.lags_s for v in lags]
    rows = run.continue_rows or [0]
    worst = max(stream_p95s(run), default=float("nan"))
    print(f"{n:>3} {'on' if batching else 'off':>8} {p(lags, 50):>8.2f} {p(lags, 95):>8.2f} {worst:>9.2f} "
          f"{len(run.errors):>6} {statistics.mean(rows):>9.1f} {max(rows):>8} "
          f"{statistics.mean(run.upload_s or [0]):>8.1f} {max(run.text_s or [0]):>10.2f}", flush=True)  # fmt: skip
    print(f"    worker busy s: {run.busy_s}")
    for error in sorted(set(run.errors))[:3]:
        print(f"    error: {error}")


def print_targets(results: dict[tuple[int, bool], Run], uploads: int) -> None:
    if (1, True) not in results or (8, True) not in results:
        return
    single = p([v for lags in results[1, True].lags_s for v in lags], 95)
    bound = max(1.5 * single, CHUNK_S)
    eight_on = results[8, True]
    p95_on = p([v for lags in eight_on.lags_s for v in lags], 95)
    print(f"\ntargets (8 streams + {uploads} uploads; lag bound = 1.5 x single-stream p95 = {bound:.2f} s):")
    print(f"  errors: {len(eight_on.errors)} (target 0)")
    print(f"  p95 lag: {p95_on:.2f} s vs bound {bound:.2f} s: {'met' if p95_on <= bound else 'NOT met'}")
    for n in sorted({k[0] for k in results}):
        on, off = kept(results[n, True], bound), kept(results[n, False], bound)
        print(f"  N={n:>2}: streams kept within {bound:.2f} s: batching on {on}/{n}, off {off}/{n}")
    on_total = sum(kept(results[k], bound) for k in results if k[1])
    off_total = sum(kept(results[k], bound) for k in results if not k[1])
    ratio = on_total / off_total if off_total else float("inf")
    print(f"  streams kept at real time over all N: on {on_total}, off {off_total} (ratio {ratio:.1f}, target >= 4)")


if __name__ == "__main__":
    main()
