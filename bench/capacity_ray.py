"""The remote hop's cost: live streams on the local backend beside the Ray pool with 1 and 2 replicas (tiny model).

``python bench/capacity.py --backend ray --replicas 1,2`` (or this module directly). Each stream is espeak-ng speech
fed in real time (0.5 s chunks); a chunk's lag is how long after its last sample was spoken its events came back.
A stream is kept at real time when its p95 lag is under ``KEPT_S``. The step table times one live step's calls
(encode + continue_text on a 3 s segment) alone, local and remote in turns: the hop's share of a step, and the
replicas' own time in it (from the replies' stamps). Each stream's calls stay on one replica (session affinity);
one more row, the most replicas without it, shows what routing each call on its own costs ("missing" resends).
One torch thread on both sides (as in a replica with ``num_cpus`` below 1). About 7 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

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


def step_s(backend, segment: np.ndarray) -> float:
    """Seconds of one live step's calls on ``segment``: encode, then a 16-token continuation."""
    started = time.perf_counter()
    backend.continue_text(backend.encode(segment), "spa", [], 16)
    return time.perf_counter() - started


def served_s(pool) -> float:
    """Seconds the replicas spent on this front end's calls so far (from each reply's stamp)."""
    return sum(r.total_run_s for r in pool.replicas())


@dataclass(frozen=True)
class StepCost:
    """One live step alone, local and remote, measured in turns (so that other load on the machine hits both)."""

    local_s: float  # median
    remote_s: float  # median
    served_s: float  # mean seconds of the remote step spent inside the replicas
    hop_s: float  # mean remote step minus ``served_s``: serialisation, Serve's router, the round trips
    resends: int  # calls sent again with their encoder state (answered "missing" by another replica)

    @property
    def added(self) -> float:
        return self.remote_s / self.local_s - 1


def step_cost(local, pool, audio: np.ndarray, repeats: int) -> StepCost:
    segment = audio[: 3 * SAMPLE_RATE_HZ]
    remote = pool.session("step")
    step_s(local, segment), step_s(remote, segment)  # warm-up: first passes, the handle's first routing
    served, resends = served_s(pool), pool.resends
    local_times, remote_times = [], []
    for _ in range(repeats):
        local_times.append(step_s(local, segment))
        remote_times.append(step_s(remote, segment))
    served = (served_s(pool) - served) / repeats
    hop = float(np.mean(remote_times)) - served
    return StepCost(float(np.median(local_times)), float(np.median(remote_times)), served, hop,
                    pool.resends - resends)  # fmt: skip


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicas", default="1,2", help="comma-separated replica counts for the Ray rows")
    parser.add_argument("--streams", default="1,2,4", help="comma-separated N live streams")
    parser.add_argument("--speech-s", type=float, default=10.0)
    parser.add_argument("--replica-num-cpus", type=float, default=0.5)
    parser.add_argument("--without-affinity", action=argparse.BooleanOptionalAction, default=True,
                        help="also the most replicas with session affinity off")  # fmt: skip
    parser.add_argument("--step-repeats", type=int, default=12, help="live steps timed, local and remote in turns")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # as in a replica (num_cpus < 1 gives it one thread): the same work on both sides
    engine = EngineOptions(model="tiny", device="cpu")
    audio = speech(args.speech_s)
    counts = [int(n) for n in args.streams.split(",")]
    local = build_pipeline(Settings(engine=engine))
    pools = [(int(r), True) for r in args.replicas.split(",")]
    pools += [(r, False) for r in [max(r for r, _ in pools)] if args.without_affinity and r > 1]
    costs: list[tuple[str, StepCost]] = []
    print("| backend, replicas | N | kept at real time | lag p50 | lag p95 | calls sent again |")
    print("| --- | --- | --- | --- | --- | --- |", flush=True)
    for label, pipeline in [("local", local), *((pool_label(r, a), None) for r, a in pools)]:
        if pipeline is None:
            replicas, affinity = pools[len(costs)]
            cluster = ClusterSettings(backend="ray", replicas=replicas, replica_num_cpus=args.replica_num_cpus,
                                      session_affinity=affinity, ray_dashboard_port=0,
                                      ray_app_name=f"parley-bench-{len(costs)}")  # fmt: skip
            pipeline = build_pipeline(Settings(engine=engine, cluster=cluster))
            costs.append((label, step_cost(local.scheduler.session("step"), pipeline.pool, audio,
                                           args.step_repeats)))  # fmt: skip
        for n in counts:
            before = (pipeline.pool.resends, pipeline.pool.retries) if pipeline.pool else (0, 0)
            lags = run_streams(pipeline, audio, n)
            kept = sum(p95(s) < KEPT_S for s in lags)
            flat = [x for s in lags for x in s]
            again = "–" if pipeline.pool is None else sent_again(pipeline.pool, before)
            print(f"| {label} | {n} | {kept}/{n} | {np.median(flat):.2f} s | {p95(flat):.2f} s | {again} |",
                  flush=True)  # fmt: skip
        if pipeline.pool is not None:
            pipeline.pool.close()
    local.scheduler.close()
    print_steps(costs, args.step_repeats)


def pool_label(replicas: int, affinity: bool) -> str:
    return f"ray, {replicas}" + ("" if affinity else " (no session affinity)")


def sent_again(pool, before: tuple[int, int]) -> str:
    return f"{pool.resends - before[0]} missing, {pool.retries - before[1]} retried"


def print_steps(costs: list[tuple[str, StepCost]], repeats: int) -> None:
    print(f"\nOne live step alone (3 s segment: encode + 16 tokens), {repeats} times local and remote in turns:")
    print("| backend, replicas | local | remote | in the replica | hop | added by the hop | calls sent again |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, c in costs:
        print(f"| {label} | {c.local_s * 1000:.0f} ms | {c.remote_s * 1000:.0f} ms | {c.served_s * 1000:.0f} ms "
              f"| {c.hop_s * 1000:.1f} ms | {c.added:+.0%} | {c.resends} |")  # fmt: skip


if __name__ == "__main__":
    main()
