"""Translation quality over a manifest: file translation and streaming per preset, scored as the field scores them.

    .venv/bin/python bench/quality.py MANIFEST.tsv --src eng --tgt spa [--output speech] [--presets low balanced]
    .venv/bin/python bench/quality.py MANIFEST.tsv --src eng --tgt spa --model tiny     # smoke run, offline

The manifest is a TSV file with a header row and the columns ``audio`` (a path, relative to the manifest),
``transcript`` (what is said, in the source language) and ``translation`` (the reference translation). Each
recording is translated once by file translation (utterance by utterance, offline quality) and once per streaming
preset (pushed in 0.5 s chunks). Printed per mode, over the whole manifest:

* **BLEU** and **chrF** of the translation (sacrebleu corpus scores; BLEU tokenised for Chinese or per character
  for other unsegmented scripts), and of the source transcript shown beside it (**src chrF**);
* **ASR-BLEU** for speech output: the translated speech transcribed by the model's own ASR and scored like text
  (as in Seamless' evaluation; with the model's own ASR it favours the model, so compare modes, not systems);
* the **streaming-vs-offline gap**: each preset's BLEU and chrF minus the file translation's;
* **erasure**: normalised erasure of the displayed text (committed + tentative tail), the flicker people see
  (Arivazhagan et al., 2020).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sacrebleu

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from engine.audio import SAMPLE_RATE_HZ, load_audio
from engine.file_translation import translate_recording
from engine.languages import get_language
from engine.metrics import normalised_erasure
from engine.models import load_model
from engine.options import EngineOptions
from engine.streaming import PRESETS, CommittedText, PartialText, SpeechChunk, StreamingSession
from engine.tasks import Task
from engine.translator import Translator
from engine.vad import Segmenter, StreamingVad, VadOptions, load_vad_model

CHUNK_S = 0.5
COLUMNS = ("audio", "transcript", "translation")


@dataclass(frozen=True)
class Item:
    """One manifest row."""

    #: The recording.
    audio: Path
    #: What is said, in the source language.
    transcript: str
    #: The reference translation.
    translation: str

    def __post_init__(self) -> None:
        if not self.translation.strip():
            raise ValueError(f"{self.audio.name}: the reference translation is empty")


@dataclass(frozen=True)
class Outputs:
    """What one mode produced for every item, in manifest order."""

    #: "file" or the preset name.
    mode: str
    #: The whole translation of each recording (its segments joined).
    translations: list[str]
    #: The source transcript shown beside it.
    transcripts: list[str]
    #: Translated speech per item (16 kHz), for speech output.
    speech: list[np.ndarray] | None
    #: Mean normalised erasure of the displayed text (streaming only).
    erasure: float | None


def read_manifest(path: Path) -> list[Item]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows or any(c not in rows[0] for c in COLUMNS):
        raise ValueError(f"{path}: a manifest needs a header row with the columns {', '.join(COLUMNS)}")
    return [Item(path.parent / r["audio"], r["transcript"], r["translation"]) for r in rows]


def file_outputs(translator: Translator, segmenter: Segmenter, audios: Sequence[np.ndarray], task: Task,
                 tgt: str, src: str) -> Outputs:  # fmt: skip
    results = [translate_recording(translator, segmenter, audio, task, tgt, src_lang=src) for audio in audios]
    return Outputs(
        "file",
        [" ".join(s.text for s in r.segments) for r in results],
        [" ".join(s.transcript or "" for s in r.segments) for r in results],
        [r.audio for r in results] if task.speech_output else None,
        None,
    )


def stream_one(session: StreamingSession, audio: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Push ``audio`` in chunks; returns what the viewer saw after each text update, and the speech."""
    committed, partial, displays, speech = "", "", [], []
    step = int(CHUNK_S * SAMPLE_RATE_HZ)
    batches = [session.push(audio[i : i + step], SAMPLE_RATE_HZ) for i in range(0, audio.shape[0], step)]
    for event in [e for batch in batches for e in batch] + session.finish():
        if isinstance(event, CommittedText):
            committed += event.text
        elif isinstance(event, PartialText):
            partial = event.text.strip()
        elif isinstance(event, SpeechChunk):
            speech.append(event.audio)
            continue
        else:
            continue
        displays.append(f"{committed} {partial}".strip())
    return displays, np.concatenate(speech) if speech else np.zeros(0, np.float32)


def stream_outputs(translator: Translator, vad_model, audios: Sequence[np.ndarray], task: Task, tgt: str,
                   src: str, preset: str) -> Outputs:  # fmt: skip
    translations, transcripts, speech, erasures = [], [], [], []
    for audio in audios:
        session = StreamingSession(translator, StreamingVad.for_new_stream(vad_model), tgt, task=task,
                                   preset=preset, src_lang=src)  # fmt: skip
        displays, spoken = stream_one(session, audio)
        translations.append(" ".join(s.text for s in session.segments))
        transcripts.append(" ".join(s.transcript or "" for s in session.segments))
        speech.append(spoken)
        erasures.append(normalised_erasure(displays))
    return Outputs(preset, translations, transcripts, speech if task.speech_output else None,
                   statistics.mean(erasures))  # fmt: skip


def transcribe(translator: Translator, segmenter: Segmenter, speech: np.ndarray, lang: str) -> str:
    """The model's own ASR of translated speech (empty when it is silent)."""
    if speech.size == 0 or not segmenter.segments(speech):
        return ""
    result = translate_recording(translator, segmenter, speech, Task.ASR, lang, src_lang=lang)
    return " ".join(s.text for s in result.segments)


def bleu_tokenizer(lang: str) -> str:
    if lang.startswith(("cmn", "yue", "zho")):
        return "zh"
    return "char" if get_language(lang).unsegmented else "13a"


def score_row(out: Outputs, items: Sequence[Item], asr: list[str] | None, tgt: str) -> dict[str, float]:
    refs = [[i.translation for i in items]]
    tokenize = bleu_tokenizer(tgt)
    row = {
        "BLEU": sacrebleu.corpus_bleu(out.translations, refs, tokenize=tokenize).score,
        "chrF": sacrebleu.corpus_chrf(out.translations, refs).score,
        "src chrF": sacrebleu.corpus_chrf(out.transcripts, [[i.transcript for i in items]]).score,
    }
    if asr is not None:
        row["ASR-BLEU"] = sacrebleu.corpus_bleu(asr, refs, tokenize=tokenize).score
    if out.erasure is not None:
        row["erasure"] = out.erasure
    return row


def print_table(rows: dict[str, dict[str, float]]) -> None:
    columns = ["BLEU", "chrF", "ASR-BLEU", "src chrF", "erasure", "ΔBLEU", "ΔchrF"]
    columns = [c for c in columns if any(c in r for r in rows.values()) or c.startswith("Δ")]
    print(f"    {'mode':<10}" + "".join(f"{c:>10}" for c in columns))
    offline = rows["file"]
    for mode, row in rows.items():
        if mode != "file":
            row = {**row, "ΔBLEU": row["BLEU"] - offline["BLEU"], "ΔchrF": row["chrF"] - offline["chrF"]}
        cells = "".join(f"{row[c]:>10.2f}" if c in row else f"{'–':>10}" for c in columns)
        print(f"    {mode:<10}{cells}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--src", required=True, help="language spoken in the recordings")
    parser.add_argument("--tgt", required=True, help="language of the reference translations")
    parser.add_argument("--output", choices=["text", "speech"], default="text")
    parser.add_argument("--presets", nargs="+", choices=list(PRESETS), default=list(PRESETS))
    parser.add_argument("--model", default=EngineOptions().model, help="model name, local folder or 'tiny'")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--cache-dir", type=Path, default=EngineOptions().cache_dir)
    args = parser.parse_args(argv)

    items = read_manifest(args.manifest)
    options = EngineOptions(model=args.model, device=args.device, cache_dir=args.cache_dir)
    loaded = load_model(options)
    translator = Translator(loaded, options)
    vad_model = load_vad_model()
    segmenter = Segmenter(vad_model, VadOptions(max_segment_s=options.max_segment_s))
    task = Task.S2ST if args.output == "speech" else Task.S2TT
    audios = [load_audio(i.audio) for i in items]

    print(f"Quality over {len(items)} recordings, {args.src} → {args.tgt}, {task.value}, model {loaded.name}")
    if loaded.is_tiny:
        print("    tiny model with random weights: every figure below is meaningless (smoke test of the harness)")
    runs = [file_outputs(translator, segmenter, audios, task, args.tgt, args.src)]
    runs += [stream_outputs(translator, vad_model, audios, task, args.tgt, args.src, p) for p in args.presets]
    rows = {}
    for out in runs:
        asr = [transcribe(translator, segmenter, s, args.tgt) for s in out.speech] if out.speech is not None else None
        rows[out.mode] = score_row(out, items, asr, args.tgt)
    print_table(rows)
    print("    Δ = preset minus file translation (offline); erasure = characters of displayed text taken back per")
    print("    character shown at the end (0: text only grows)")


if __name__ == "__main__":
    main()
