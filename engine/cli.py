"""Command line: ``python -m engine translate IN... --tgt spa`` translates files offline.

Speech tasks (s2st, s2tt, asr) take audio files of any common format; text tasks (t2tt, t2st) take UTF-8 text files
(one sentence or paragraph per line) or ``-`` for standard input. Exit status: 0 when every input was translated,
1 when any input failed (the others are still written), 2 for bad usage or a model that cannot be loaded.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.languages import Capability, UnknownLanguageError, get_language
from engine.options import EngineOptions
from engine.tasks import Task

if TYPE_CHECKING:
    import numpy as np

    from engine.hooks import Report, ResultCheck
    from engine.translator import Translator

#: Silence put between translated lines of a text file when they are spoken.
LINE_GAP_S = 0.5

log = logging.getLogger("parley")


@dataclass(frozen=True)
class Stages:
    """What runs around the translation, chosen here at the edge (the engine imports none of it): safety checks,
    expressive transfer, and the watermark that every synthetic sample gets before it is written."""

    checker: ResultCheck | None
    expressive: Any  # engine.expressive.ExpressiveStage | None
    mark: Callable[[np.ndarray], np.ndarray]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="Parley offline translation engine.")
    commands = parser.add_subparsers(dest="command", required=True)
    translate = commands.add_parser(
        "translate",
        help="translate audio or text files",
        description="Translate recordings (speech is cut at pauses and translated utterance by utterance) or text "
        "files, writing audio, text and SRT/WebVTT subtitles.",
        epilog="Examples:\n  python -m engine translate talk.mp3 --src eng --tgt spa\n"
        "  python -m engine translate notes.txt --task t2tt --src eng --tgt fra --model tiny",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    translate.add_argument("inputs", nargs="+", metavar="IN", help="audio files, or text files / '-' for t2tt/t2st")
    translate.add_argument("--tgt", help="target language code or name, e.g. spa or Spanish (not used by asr)")
    translate.add_argument("--src", help="source language (required for asr and text tasks; adds a transcript)")
    translate.add_argument("--task", choices=[t.value for t in Task], default=Task.S2ST.value,
                           help="s2st speech→speech (default), s2tt speech→text, asr transcription, "
                           "t2tt text→text, t2st text→speech")  # fmt: skip
    translate.add_argument("--out", type=Path, default=Path("out"), help="output folder (default: ./out)")
    translate.add_argument("--quiet", action="store_true", help="no progress bar")
    translate.add_argument(
        "--expressive",
        action="store_true",
        help="keep the speaker's pauses, pace, pitch, loudness and voice in the translated speech",
    )
    translate.add_argument(
        "--no-safety",
        action="store_true",
        help="skip the toxicity and gender-bias checks (and the .safety.json report)",
    )
    translate.add_argument(
        "--filter-toxicity",
        action="store_true",
        help="also mask offensive words the speaker said (default: reported, not censored)",
    )
    EngineOptions.add_arguments(translate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    task = Task(args.task)
    if (task is Task.ASR or not task.speech_input) and not args.src:
        print(f"error: --src is required for {task.value}.", file=sys.stderr)
        return 2
    if task is not Task.ASR and not args.tgt:
        print("error: --tgt is required.", file=sys.stderr)
        return 2
    try:
        # Cheap checks first, so a typo is reported before minutes of model loading.
        get_language(args.src if task is Task.ASR else args.tgt, Capability.TEXT)
        if task.speech_output:
            get_language(args.tgt, Capability.SPEECH_OUTPUT)
        translator = _load(EngineOptions.from_args(args))
        tgt = translator.check_target(args.src if task is Task.ASR else args.tgt, task.speech_output)
        stages = _stages(translator, args)
    except (ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from engine.audio import AudioError

    failures = 0
    for name in args.inputs:
        try:
            paths, flagged = _translate_one(translator, name, task, tgt, args.src, args.out, args.quiet, stages)
        except (AudioError, UnknownLanguageError, OSError, UnicodeDecodeError) as e:
            print(f"{name}: error: {e}", file=sys.stderr)
            failures += 1
            continue
        print(f"{name}:")
        for path in paths:
            print(f"  wrote {path}")
        for line in flagged:
            print(f"  safety: {line}")
    return 1 if failures else 0


def _load(options: EngineOptions) -> Translator:
    import transformers

    from engine.models import load_model
    from engine.translator import Translator

    transformers.logging.set_verbosity_error()  # library chatter is not for the person at the terminal
    transformers.logging.disable_progress_bar()

    return Translator(load_model(options), options)


def _stages(translator: Translator, args: argparse.Namespace) -> Stages:
    from engine.prosody import ExpressiveOptions, ExpressiveStage
    from engine.voices import VoiceMatcher
    from safety.marking import SpeechMarker
    from safety.pipeline import SafetyChecker, SafetyOptions
    from safety.watermark import create_watermarker

    checker = None
    if not args.no_safety:
        checker = SafetyChecker(translator, SafetyOptions(filter_source_toxicity=args.filter_toxicity))
    expressive = None
    if args.expressive:
        options = ExpressiveOptions(cache_dir=translator.options.cache_dir)
        expressive = ExpressiveStage(options, VoiceMatcher(translator, options))
    deployment = int(os.environ.get("PARLEY_DEPLOYMENT_ID", "0"))
    run = f"cli-{os.getpid()}-{os.urandom(4).hex()}"  # one session id per run
    return Stages(checker, expressive, SpeechMarker.for_session(create_watermarker(), deployment, run))


def _write_safety(out: Path, stem: str, tgt: str, items: list[tuple[str, str, Report]]) -> tuple[Path, list[str]]:
    """Write ``<stem>.<tgt>.safety.json`` from (label, shown text, report) per utterance or line; returns its path
    and one summary line per flagged item."""
    entries = [{"item": label, "text": text, **report.as_dict()} for label, text, report in items]
    path = out / f"{stem}.{tgt}.safety.json"
    path.write_text(json.dumps(entries, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path, [f"{label}: {' '.join(report.flags)}" for label, _, report in items if report.flags]


def _translate_one(
    translator: Translator,
    name: str,
    task: Task,
    tgt: str,
    src: str | None,
    out: Path,
    quiet: bool,
    stages: Stages,
) -> tuple[list[Path], list[str]]:
    """Translate one input; returns the paths written and the safety summary of each flagged item."""
    stem = "stdin" if name == "-" else Path(name).stem
    if not task.speech_input:
        return _translate_text(translator, name, task, tgt, src, out, stem, stages)
    from tqdm import tqdm

    from engine.audio import load_audio
    from engine.file_translation import translate_recording, write_outputs
    from engine.vad import Segmenter, VadOptions, load_vad_model

    options = translator.options
    audio = load_audio(name, max_duration_s=options.max_audio_s, max_file_bytes=options.max_file_bytes)
    segmenter = Segmenter(load_vad_model(), VadOptions(max_segment_s=options.max_segment_s))
    with tqdm(total=None, desc=stem, unit="utt", disable=quiet, file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        result = translate_recording(
            translator, segmenter, audio, task, tgt, src, progress, expressive=stages.expressive, checker=stages.checker
        )
    if result.audio is not None:
        result = dataclasses.replace(result, audio=stages.mark(result.audio))
    written = write_outputs(result, out, stem)
    if stages.checker is None:
        return written, []
    items = [
        (f"utterance {i} ({s.source.start_s:.1f}-{s.source.end_s:.1f} s)", s.text, s.safety)
        for i, s in enumerate(result.segments, start=1)
        if s.safety is not None
    ]
    path, flagged = _write_safety(out, stem, result.tgt_lang, items)
    return [*written, path], flagged


def _translate_text(
    translator: Translator,
    name: str,
    task: Task,
    tgt: str,
    src: str | None,
    out: Path,
    stem: str,
    stages: Stages,
) -> tuple[list[Path], list[str]]:
    import numpy as np

    from engine.audio import SAMPLE_RATE_HZ, AudioError, write_wav

    text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise AudioError("The text input is empty.")  # same plain-words error path as empty audio
    if stages.checker is None:
        results, reports = translator.translate(lines, task, tgt, src_lang=src), []
    else:
        from safety.pipeline import translate_checked

        checked = translate_checked(translator, stages.checker, lines, task, tgt, src)
        results, reports = [r for r, _ in checked], [report for _, report in checked]
    out.mkdir(parents=True, exist_ok=True)
    text_path = out / f"{stem}.{tgt}.txt"
    text_path.write_text("\n".join(r.text for r in results) + "\n", encoding="utf-8")
    written = [text_path]
    if task.speech_output:
        gap = np.zeros(int(LINE_GAP_S * SAMPLE_RATE_HZ), dtype=np.float32)
        pieces = [piece for r in results for piece in (r.waveform, gap)][:-1]
        written.append(write_wav(out / f"{stem}.{tgt}.wav", stages.mark(np.concatenate(pieces))))
    if stages.checker is None:
        return written, []
    items = [(f"line {i}", r.text, report) for i, (r, report) in enumerate(zip(results, reports, strict=True), 1)]
    path, flagged = _write_safety(out, stem, tgt, items)
    return [*written, path], flagged
