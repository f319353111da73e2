"""The remote hop's cost: live streams on the local backend beside the Ray pool with 1 and 2 replicas (tiny model).

``python bench/capacity.py --backend ray --replicas 1,2`` (or this module directly). Each stream is espeak-ng speech
fed in real time (0.5 s chunks); a chunk's lag is how long after its last sample was spoken its events came back.
A stream is kept at real time when its p95 lag is under ``KEPT_S``. The step table times one live step's calls
(encode + continue_text on a 3 s segment) alone, local against one replica: the hop's share of a step.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from compose.pipeline import build_pipeline
from compose.settings import ClusterSettings, Settings
from engine.audio import SAMPLE_RATE_HZ, load_audio
from engine.options import EngineOptions

CHUNK_S = 0.5
KEPT_S = 1.0
SENTENCE = "Welcome to the weekly meeting, today we talk about the new streaming engine and its latency."


def speech(seconds: float) -> np.ndarray:
    import subprocess

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "s.wav"
        subprocess.run(["espeak-ng", "-w", str(path), SENTENCE], check=True, capture_output=True)
        one = load_audio(path)
    pause = np.zeros(int(0.8 * SAMPLE_RATE_HZ), np.float32)
    return np.tile(np.concatenate([one, pause]), int(seconds // (one.size / SAMPLE_RATE_HZ + 0.8)) + 1)[
        : int(seconds * SAMPLE_RATE_HZ)
    ]


def stream_lags(pipeline, audio: np.ndarray, tgt: str) -> list[float]:
    session = pipeline.stream(tgt, "s2tt", preset="low")
    step, lags, start = int(CHUNK_S * SAMPLE_RATE_HZ), [], time.monotonic()
    for k, i in enumerate(range(0, audio.size, step)):
        spoken = start + (k + 1) * CHUNK_S
        time.sleep(max(0.0, spoken - time.monotonic()))
        session.push(audio[i : i + step], SAMPLE_RATE_HZ)
        lags.append(time.monotonic() - spoken)
    session.finish()
    return lags


def run_streams(pipeline, audio: np.ndarray, n: int) -> list[list[float]]:
    results: list = [None] * n
    threads = [
        threading.Thread(target=lambda i=i: results.__setitem__(i, stream_lags(pipeline, audio, ("spa", "fra")[i % 2])))
        for i in range(n)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def step_ms(backend, audio: np.ndarray, repeats: int = 8) -> float:
    """Median ms of one live step's calls on a 3 s segment (encode + a 16-token continuation)."""
    segment, times = audio[: 3 * SAMPLE_RATE_HZ], []
    for _ in range(repeats):
        started = time.perf_counter()
        backend.continue_text(backend.encode(segment), "spa", [], 16)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicas", default="1,2", help="comma-separated replica counts for the Ray rows")
    parser.add_argument("--streams", default="1,2,4", help="comma-separated N live streams")
    parser.add_argument("--speech-s", type=float, default=10.0)
    parser.add_argument("--replica-num-cpus", type=float, default=0.5)
    args = parser.parse_args(argv)
    engine = EngineOptions(model="tiny", device="cpu")
    audio = speech(args.speech_s)
    counts = [int(n) for n in args.streams.split(",")]
    configs = [("local", 0)] + [("ray", int(r)) for r in args.replicas.split(",")]
    print("| backend | replicas | N | kept at real time | lag p50 | lag p95 | one step (encode + 16 tokens) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for backend, replicas in configs:
        cluster = ClusterSettings(backend=backend, replicas=max(replicas, 1), replica_num_cpus=args.replica_num_cpus,
                                  ray_dashboard_port=0, ray_app_name=f"parley-bench-{replicas}")  # fmt: skip
        pipeline = build_pipeline(Settings(engine=engine, cluster=cluster))
        one = pipeline.pool.session("step") if pipeline.pool else pipeline.scheduler.session("step")
        step = step_ms(one, audio)
        for n in counts:
            lags = run_streams(pipeline, audio, n)
            kept = sum(p95(s) < KEPT_S for s in lags)
            flat = [x for s in lags for x in s]
            print(f"| {backend} | {replicas or '–'} | {n} | {kept}/{n} | {np.median(flat):.2f} s | {p95(flat):.2f} s "
                  f"| {step:.0f} ms |", flush=True)  # fmt: skip
        if pipeline.pool is not None:
            pipeline.pool.close()
        elif pipeline.scheduler is not None:
            pipeline.scheduler.close()


if __name__ == "__main__":
    main()
