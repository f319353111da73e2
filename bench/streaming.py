"""Streaming benchmark: bounded cost over a 10-minute stream, latency per preset, full-size real-time factor.

    .venv/bin/python bench/streaming.py                 # all three parts (the full-size part needs ~12 GB, minutes)
    .venv/bin/python bench/streaming.py --skip-full     # tiny model only

(a) A 10-minute synthetic stream (espeak-ng utterances with pauses, plus one long stretch without any pause, the
    same pattern every minute) is pushed in browser-sized chunks (0.5 s of int16 at 48 kHz); the compute per chunk
    in minute 1 and minute 10 is compared. (b) AL, LAAL and ending offset per preset, per utterance, on the tiny
    model, non-computation-aware and computation-aware. (c) Compute real-time factor of the full-size architecture
    (random weights) on this CPU for one preset.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from bench.full_model import full_size_random
from engine.audio import SAMPLE_RATE_HZ, load_audio
from engine.metrics import latency
from engine.models import load_model
from engine.options import EngineOptions
from engine.resample import StreamResampler
from engine.streaming import PRESETS, CommittedText, SegmentEnd, StreamingSession
from engine.translator import Translator
from engine.vad import StreamingVad, load_vad_model

BROWSER_RATE_HZ = 48_000
CHUNK_S = 0.5
SENTENCES = [
    "Good morning and thank you all for joining this call",
    "Today we look at the numbers from the last quarter",
    "Sales grew in every region except the north",
    "We expect the new product to ship in the spring",
    "Please send your questions before the end of the week",
]


def speak(text: str, folder: Path, index: int, speed_wpm: int = 150) -> np.ndarray:
    path = folder / f"s{index}.wav"
    subprocess.run(["espeak-ng", "-s", str(speed_wpm), "-w", str(path), text], check=True, capture_output=True)
    return load_audio(path)


def minute_of_speech(utterances: list[np.ndarray]) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """One minute: the utterances with pauses, then one stretch of speech without pauses, then silence."""
    pieces, spans, cursor = [], [], 0
    for utt in utterances:
        pieces += [utt, np.zeros(int(1.0 * SAMPLE_RATE_HZ), np.float32)]
        spans.append((cursor / SAMPLE_RATE_HZ, (cursor + utt.size) / SAMPLE_RATE_HZ))
        cursor += utt.size + int(1.0 * SAMPLE_RATE_HZ)
    pieces.append(np.concatenate(utterances))  # no pause at all: exercises the cut at the quietest point
    audio = np.concatenate(pieces)
    total = 60 * SAMPLE_RATE_HZ
    return np.pad(audio, (0, max(0, total - audio.size)))[:total], spans


def browser_chunks(audio16: np.ndarray) -> list[np.ndarray]:
    """What a browser microphone sends: int16 at 48 kHz in 0.5 s chunks."""
    resampler = StreamResampler(SAMPLE_RATE_HZ, BROWSER_RATE_HZ)
    at48 = np.concatenate([resampler.push(audio16), resampler.flush()])
    pcm = (np.clip(at48, -1, 1) * 32767).astype(np.int16)
    step = int(CHUNK_S * BROWSER_RATE_HZ)
    return [pcm[i : i + step] for i in range(0, pcm.size, step)]


def bounded_cost(translator: Translator, vad_model, minute: np.ndarray, minutes: int) -> None:
    import time

    session = StreamingSession(translator, StreamingVad.for_new_stream(vad_model), "spa", preset="balanced")
    chunks = browser_chunks(minute)
    per_minute: list[list[float]] = []
    for _ in range(minutes):
        costs = []
        for chunk in chunks:
            started = time.perf_counter()
            session.push(chunk, BROWSER_RATE_HZ)
            costs.append(time.perf_counter() - started)
        per_minute.append(costs)
    session.finish()
    first, last = statistics.mean(per_minute[0]), statistics.mean(per_minute[-1])
    print(f"(a) bounded cost: {minutes}-minute stream, {len(chunks)} chunks of {CHUNK_S} s per minute, preset balanced")
    print(f"    mean compute per chunk: minute 1 {first * 1000:.1f} ms, minute {minutes} {last * 1000:.1f} ms, "
          f"ratio {last / first:.2f}; segments {len(session.segments)}")  # fmt: skip


def realtime_stream(session: StreamingSession, chunks: list[np.ndarray]) -> list[tuple[object, float]]:
    """Push chunks as if they arrived in real time; return each event with the wall-clock second it would appear.

    Chunk k arrives at (k + 1) · 0.5 s and is processed once the previous one is done (a backlog delays it);
    an event appears when the computation that produced it finishes.
    """
    timed, free_at = [], 0.0
    for k, chunk in enumerate(chunks):
        start = max((k + 1) * CHUNK_S, free_at)
        before = session.compute_s
        events = session.push(chunk, BROWSER_RATE_HZ)
        timed += [(e, start + e.compute_s - before) for e in events]
        free_at = start + session.compute_s - before
    before = session.compute_s
    timed += [(e, free_at + e.compute_s - before) for e in session.finish()]
    return timed


def latency_table(translator: Translator, vad_model, audio: np.ndarray, spans: list[tuple[float, float]]) -> None:
    """Delays per output token (the tiny model's target here is Chinese, where every token may be committed)."""
    print("(b) latency per preset, tiny model (target cmn), per output token, mean over utterances (seconds)")
    print("    CA = computation-aware: when the token would appear if the audio arrived in real time on this CPU")
    print(
        f"    {'preset':<10}{'AL':>7}{'LAAL':>7}{'EndOff':>8}{'AL_CA':>8}{'LAAL_CA':>9}{'EndOff_CA':>10}{'commits':>9}"
    )
    chunks = browser_chunks(audio)
    for name in PRESETS:
        session = StreamingSession(translator, StreamingVad.for_new_stream(vad_model), "cmn", preset=name)
        timed = realtime_stream(session, chunks)
        ends = {e.segment: e for e, _ in timed if isinstance(e, SegmentEnd)}
        rows = []
        for start, end in spans:
            tokens = [  # commits of the segment that covers this utterance, delays from the utterance's start
                (e.source_time_s - start, wall - start, len(e.token_ids))
                for e, wall in timed
                if isinstance(e, CommittedText) and ends[e.segment].start_s < end and ends[e.segment].end_s > start
            ]
            plain = [d for d, _, n in tokens for _ in range(n)]
            aware = [w for _, w, n in tokens for _ in range(n)]
            if plain:
                rows.append((latency(plain, end - start), latency(aware, end - start)))
        commits = sum(isinstance(e, CommittedText) for e, _ in timed)
        fields = ("al_s", "laal_s", "ending_offset_s")
        means = [statistics.mean(getattr(r[i], f) for r in rows) for i in (0, 1) for f in fields]
        print(f"    {name:<10}{means[0]:>7.2f}{means[1]:>7.2f}{means[2]:>8.2f}{means[3]:>8.2f}{means[4]:>9.2f}"
              f"{means[5]:>10.2f}{commits:>9}")  # fmt: skip


def full_size_rtf(tiny, vad_model, utterance: np.ndarray) -> None:
    loaded = full_size_random(tiny)
    options = EngineOptions(model=loaded.name)
    translator = Translator(loaded, options)
    audio = np.concatenate([np.zeros(SAMPLE_RATE_HZ // 2, np.float32), utterance, np.zeros(SAMPLE_RATE_HZ, np.float32)])
    session = StreamingSession(
        translator, StreamingVad.for_new_stream(vad_model), "spa", task="s2st", preset="balanced"
    )
    events = [e for chunk in browser_chunks(audio) for e in session.push(chunk, BROWSER_RATE_HZ)] + session.finish()
    source_s = audio.size / SAMPLE_RATE_HZ
    tokens = sum(len(e.token_ids) for e in events if isinstance(e, CommittedText))
    billions = sum(p.numel() for p in loaded.model.parameters()) / 1e9
    print(f"(c) full-size architecture (random weights, {billions:.2f} B parameters),"
          f" s2st, preset balanced, CPU: {source_s:.1f} s of audio, {tokens} tokens committed, "
          f"compute {session.compute_s:.1f} s, real-time factor {session.compute_s / source_s:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--skip-full", action="store_true", help="skip the full-size part")
    args = parser.parse_args()

    options = EngineOptions(model="tiny", device="cpu")
    tiny = load_model(options)
    translator = Translator(tiny, options)
    vad_model = load_vad_model()
    with tempfile.TemporaryDirectory() as tmp:
        utterances = [speak(text, Path(tmp), i) for i, text in enumerate(SENTENCES)]
    minute, spans = minute_of_speech(utterances)
    bounded_cost(translator, vad_model, minute, args.minutes)
    latency_table(translator, vad_model, minute[: int((spans[-1][1] + 1.0) * SAMPLE_RATE_HZ)], spans)
    if not args.skip_full:
        full_size_rtf(tiny, vad_model, utterances[0])


if __name__ == "__main__":
    main()
