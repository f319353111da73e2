"""Streaming benchmark: bounded cost and long-form latency over a 10-minute stream, latency per preset, full-size
real-time factor.

    .venv/bin/python bench/streaming.py                 # all three parts (the full-size part needs ~12 GB, minutes)
    .venv/bin/python bench/streaming.py --skip-full     # tiny model only

(a) A 10-minute synthetic stream (espeak-ng utterances with pauses, plus one long stretch without any pause, the
    same pattern every minute) is pushed in browser-sized chunks (0.5 s of int16 at 48 kHz); the compute per chunk
    in minute 1 and minute 10 is compared, and the whole stream's StreamLAAL and LongYAAL are computed against
    reference translations of its sentences (engine.longform_metrics). (b) AL, LAAL and DAL (tau word included, as
    published) and ending offset per preset, per utterance, on the tiny model, non-computation-aware and
    computation-aware. (c) Compute real-time factor of the full-size architecture (random weights) on this CPU for
    one preset. Computation-aware ("CA") figures are engine.metrics.computation_aware_delay_s, replayed as if the
    audio arrived in real time (engine.metrics.RealTimeReplay).
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
from engine.longform_metrics import ReferenceSentence, TimedWord, long_form_latency
from engine.metrics import RealTimeReplay, latency
from engine.models import load_model
from engine.options import EngineOptions
from engine.resample import StreamResampler
from engine.streaming import PRESETS, CommittedText, SegmentEnd, StreamEvent, StreamingSession
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
#: Reference translations (Spanish) of SENTENCES, for the long-form latency of the 10-minute stream.
REFERENCES_SPA = [
    "Buenos días y gracias a todos por unirse a esta llamada",
    "Hoy vemos las cifras del último trimestre",
    "Las ventas crecieron en todas las regiones excepto en el norte",
    "Esperamos que el nuevo producto salga en primavera",
    "Por favor envíen sus preguntas antes del final de la semana",
]


def speak(text: str, folder: Path, index: int, speed_wpm: int = 150) -> np.ndarray:
    path = folder / f"s{index}.wav"
    subprocess.run(["espeak-ng", "-s", str(speed_wpm), "-w", str(path), text], check=True, capture_output=True)
    return load_audio(path)


def minute_of_speech(utterances: list[np.ndarray]) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """One minute: the utterances with pauses, then one stretch of speech without pauses, then silence.

    Returns the audio and the source span of each utterance, then of the stretch (all utterances again)."""
    pieces, spans, cursor = [], [], 0
    for utt in utterances:
        pieces += [utt, np.zeros(int(1.0 * SAMPLE_RATE_HZ), np.float32)]
        spans.append((cursor / SAMPLE_RATE_HZ, (cursor + utt.size) / SAMPLE_RATE_HZ))
        cursor += utt.size + int(1.0 * SAMPLE_RATE_HZ)
    pieces.append(np.concatenate(utterances))  # no pause at all: exercises the cut at the quietest point
    spans.append((cursor / SAMPLE_RATE_HZ, (cursor + pieces[-1].size) / SAMPLE_RATE_HZ))
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


def realtime_stream(
    session: StreamingSession, chunks: list[np.ndarray], costs_s: list[float] | None = None
) -> list[tuple[StreamEvent, float]]:
    """Push chunks (as fast as this machine goes) and give each event its computation-aware delay: when it would
    appear had chunk k arrived in real time at (k + 1) · 0.5 s (:class:`engine.metrics.RealTimeReplay`).
    ``costs_s`` collects the compute of each push."""
    replay, timed = RealTimeReplay(), []
    for k, chunk in enumerate([*chunks, None]):
        before = session.compute_s
        events = session.push(chunk, BROWSER_RATE_HZ) if chunk is not None else session.finish()
        spent_s = session.compute_s - before
        arrival_s = min(k + 1, len(chunks)) * CHUNK_S
        delays = replay.push(
            arrival_s, spent_s, [(e.source_time_s, min(spent_s, e.compute_s - before)) for e in events]
        )
        timed += zip(events, delays, strict=True)
        if costs_s is not None and chunk is not None:
            costs_s.append(spent_s)
    return timed


def reference_sentences(spans: list[tuple[float, float]], minutes: int) -> list[ReferenceSentence]:
    """Spanish references of every utterance and of each minute's stretch without pauses, at their source spans."""
    texts = [*REFERENCES_SPA, " ".join(REFERENCES_SPA)]
    return [
        ReferenceSentence(text, 60.0 * m + start, 60.0 * m + end)
        for m in range(minutes)
        for text, (start, end) in zip(texts, spans, strict=True)
    ]


def long_form(timed: list[tuple[StreamEvent, float]], sentences: list[ReferenceSentence], end_s: float) -> str:
    """StreamLAAL and LongYAAL of the whole stream against ``sentences``, plain and computation-aware."""
    commits = [(e, ca) for e, ca in timed if isinstance(e, CommittedText)]
    plain = [TimedWord(w, e.source_time_s) for e, _ in commits for w in e.text.split()]
    aware = [TimedWord(w, ca) for e, ca in commits for w in e.text.split()]
    scores = [long_form_latency(words, sentences, recording_end_s=end_s) for words in (plain, aware)]

    def figure(value: float | None) -> str:
        return "–" if value is None else f"{value:.2f} s"

    return (f"StreamLAAL {figure(scores[0].stream_laal_s)}, LongYAAL {figure(scores[0].long_yaal_s)}; "
            f"CA: StreamLAAL {figure(scores[1].stream_laal_s)}, LongYAAL {figure(scores[1].long_yaal_s)} "
            f"({scores[0].scored_sentences} of {len(sentences)} sentences got words, {len(plain)} words)")  # fmt: skip


def bounded_cost(translator: Translator, vad_model, minute: np.ndarray, spans, minutes: int) -> None:
    session = StreamingSession(translator, StreamingVad.for_new_stream(vad_model), "spa", preset="balanced")
    chunks = browser_chunks(minute)
    costs_s: list[float] = []
    timed = realtime_stream(session, chunks * minutes, costs_s)
    first, last = statistics.mean(costs_s[: len(chunks)]), statistics.mean(costs_s[-len(chunks) :])
    print(f"(a) bounded cost: {minutes}-minute stream, {len(chunks)} chunks of {CHUNK_S} s per minute, preset balanced")
    print(f"    mean compute per chunk: minute 1 {first * 1000:.1f} ms, minute {minutes} {last * 1000:.1f} ms, "
          f"ratio {last / first:.2f}; segments {len(session.segments)}")  # fmt: skip
    end_s = 60.0 * minutes
    print("    long form, target spa, whole stream:")
    print(f"      against Spanish references: {long_form(timed, reference_sentences(spans, minutes), end_s)}")
    print("      (the tiny model's words match no reference word, so re-segmentation places them by position alone")
    print("      and many land in later sentences: meaningful only with real weights)")
    own = [ReferenceSentence(s.text, s.start_s, s.end_s) for s in session.segments if s.text]
    print(f"      against its own segments (exact alignment, checks the timing path): {long_form(timed, own, end_s)}")


def latency_table(translator: Translator, vad_model, audio: np.ndarray, spans: list[tuple[float, float]]) -> None:
    """Delays per output token (the tiny model's target here is Chinese, where every token may be committed)."""
    print("(b) latency per preset, tiny model (target cmn), per output token, mean over utterances (seconds);")
    print("    AL, LAAL, DAL as published (tau word included); |Y*| = the hypothesis (no reference for cmn here)")
    print("    CA = computation-aware: when the token would appear if the audio arrived in real time on this CPU")
    print(f"    {'preset':<10}{'AL':>7}{'LAAL':>7}{'DAL':>7}{'EndOff':>8}{'AL_CA':>8}{'LAAL_CA':>9}{'DAL_CA':>8}"
          f"{'EndOff_CA':>10}{'commits':>9}")  # fmt: skip
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
            if plain:  # an utterance without output has no lag (skipped, as SimulEval does)
                rows.append((latency(plain, end - start), latency(aware, end - start)))
        commits = sum(isinstance(e, CommittedText) for e, _ in timed)
        fields = ("al_s", "laal_s", "dal_s", "ending_offset_s")
        m = [statistics.mean(getattr(r[i], f) for r in rows) for i in (0, 1) for f in fields]
        print(f"    {name:<10}{m[0]:>7.2f}{m[1]:>7.2f}{m[2]:>7.2f}{m[3]:>8.2f}{m[4]:>8.2f}{m[5]:>9.2f}{m[6]:>8.2f}"
              f"{m[7]:>10.2f}{commits:>9}")  # fmt: skip


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
    bounded_cost(translator, vad_model, minute, spans, args.minutes)
    utterance_spans = spans[: len(SENTENCES)]  # the stretch without pauses is not one utterance
    latency_table(
        translator, vad_model, minute[: int((utterance_spans[-1][1] + 1.0) * SAMPLE_RATE_HZ)], utterance_spans
    )
    if not args.skip_full:
        full_size_rtf(tiny, vad_model, utterances[0])


if __name__ == "__main__":
    main()
