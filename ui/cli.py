"""Command line: ``python app.py translate IN... --tgt spa`` (or ``python -m ui.cli translate``) translates files.

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
from pathlib import Path
from typing import TYPE_CHECKING

from compose.settings import CLI, Settings, add_arguments, load_settings
from compose.stopping import stopping_like_ctrl_c
from engine.languages import Capability, UnknownLanguageError, get_language
from engine.tasks import Task

if TYPE_CHECKING:
    from compose.pipeline import Pipeline
    from engine.hooks import Report
    from safety.marking import SpeechMarker

#: Silence put between translated lines of a text file when they are spoken.
LINE_GAP_S = 0.5

log = logging.getLogger("parley")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python app.py", description="Parley offline translation of files.")
    commands = parser.add_subparsers(dest="command", required=True)
    translate = commands.add_parser(
        "translate",
        help="translate audio or text files",
        description="Translate recordings (speech is cut at pauses and translated utterance by utterance) or text "
        "files, writing audio, text and SRT/WebVTT subtitles.",
        epilog="Examples:\n  python app.py translate talk.mp3 --src eng --tgt spa\n"
        "  python app.py translate notes.txt --task t2tt --src eng --tgt fra --model tiny",
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
    add_arguments(translate, CLI)
    return parser


def main(argv: list[str] | None = None) -> int:
    with stopping_like_ctrl_c():  # a stop by signal also shuts down a Ray head started here
        try:
            return _main(argv)
        except KeyboardInterrupt:
            print("Stopped; the files written until then are kept.", file=sys.stderr)
            return 130


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    task = Task(args.task)
    if (task is Task.ASR or not task.speech_input) and not args.src:
        print(f"error: --src is required for {task.value}.", file=sys.stderr)
        return 2
    if task is not Task.ASR and not args.tgt:
        print("error: --tgt is required.", file=sys.stderr)
        return 2
    try:
        settings = load_settings(args)
        # Cheap checks first, so a typo is reported before minutes of model loading.
        get_language(args.src if task is Task.ASR else args.tgt, Capability.TEXT)
        if task.speech_output:
            get_language(args.tgt, Capability.SPEECH_OUTPUT)
        pipeline = _load(settings)
        tgt = pipeline.translator.check_target(args.src if task is Task.ASR else args.tgt, task.speech_output)
    except (ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from engine.audio import AudioError

    marker = pipeline.marker(f"cli-{os.getpid()}-{os.urandom(4).hex()}")  # one session id per run
    failures = 0
    for name in args.inputs:
        try:
            paths, flagged = _translate_one(pipeline, marker, name, task, tgt, args.src, args.out, args.quiet)
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


def _load(settings: Settings) -> Pipeline:
    import transformers

    from compose.pipeline import build_pipeline

    transformers.logging.set_verbosity_error()  # library chatter is not for the person at the terminal
    transformers.logging.disable_progress_bar()
    return build_pipeline(settings)


def _write_safety(out: Path, stem: str, tgt: str, items: list[tuple[str, str, Report]]) -> tuple[Path, list[str]]:
    """Write ``<stem>.<tgt>.safety.json`` from (label, shown text, report) per utterance or line; returns its path
    and one summary line per flagged item."""
    entries = [{"item": label, "text": text, **report.as_dict()} for label, text, report in items]
    path = out / f"{stem}.{tgt}.safety.json"
    path.write_text(json.dumps(entries, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path, [f"{label}: {' '.join(report.flags)}" for label, _, report in items if report.flags]


def _translate_one(
    pipeline: Pipeline, marker: SpeechMarker, name: str, task: Task, tgt: str, src: str | None, out: Path, quiet: bool
) -> tuple[list[Path], list[str]]:
    """Translate one input; returns the paths written and the safety summary of each flagged item."""
    stem = "stdin" if name == "-" else Path(name).stem
    if not task.speech_input:
        return _translate_text(pipeline, marker, name, task, tgt, src, out, stem)
    from tqdm import tqdm

    from engine.audio import load_audio
    from engine.file_translation import write_outputs

    options = pipeline.settings.engine
    audio = load_audio(name, max_duration_s=options.max_audio_s, max_file_bytes=options.max_file_bytes)
    with tqdm(total=None, desc=stem, unit="utt", disable=quiet, file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        result = pipeline.translate_recording(audio, task, tgt, src, progress)
    if result.audio is not None:
        result = dataclasses.replace(result, audio=marker(result.audio))
    written = write_outputs(result, out, stem)
    if pipeline.judge is None:
        return written, []
    items = [
        (f"utterance {i} ({s.source.start_s:.1f}-{s.source.end_s:.1f} s)", s.text, s.safety)
        for i, s in enumerate(result.segments, start=1)
        if s.safety is not None
    ]
    path, flagged = _write_safety(out, stem, result.tgt_lang, items)
    return [*written, path], flagged


def _translate_text(
    pipeline: Pipeline,
    marker: SpeechMarker,
    name: str,
    task: Task,
    tgt: str,
    src: str | None,
    out: Path,
    stem: str,
) -> tuple[list[Path], list[str]]:
    import numpy as np

    from engine.audio import SAMPLE_RATE_HZ, AudioError, write_wav

    text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise AudioError("The text input is empty.")  # same plain-words error path as empty audio
    checked = pipeline.translate_texts(lines, task, tgt, src)
    results = [r for r, _ in checked]
    out.mkdir(parents=True, exist_ok=True)
    text_path = out / f"{stem}.{tgt}.txt"
    text_path.write_text("\n".join(r.text for r in results) + "\n", encoding="utf-8")
    written = [text_path]
    if task.speech_output:
        gap = np.zeros(int(LINE_GAP_S * SAMPLE_RATE_HZ), dtype=np.float32)
        pieces = [piece for r in results for piece in (r.waveform, gap)][:-1]
        written.append(write_wav(out / f"{stem}.{tgt}.wav", marker(np.concatenate(pieces))))
    if pipeline.judge is None:
        return written, []
    items = [(f"line {i}", r.text, report) for i, (r, report) in enumerate(checked, 1)]
    path, flagged = _write_safety(out, stem, tgt, items)
    return [*written, path], flagged


if __name__ == "__main__":
    sys.exit(main())
