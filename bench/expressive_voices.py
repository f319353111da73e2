"""Voice similarity (VSim) of the expressive output: default voice, nearest voice by pitch, nearest by embedding.

Printed by ``bench/expressive.py --voices``. The tiny model's vocoder voices are noise, so a bank of espeak-ng
Spanish voice variants stands in for the vocoder's speakers: each is measured once on a profile sentence (as
:meth:`engine.voices.VoiceMatcher.prepare` measures the vocoder's), each item's translation is rendered by the chosen
voice, and VSim is the cosine similarity of Resemblyzer embeddings of source and output (SeamlessExpressive's VSim
uses WavLM-based embeddings; the figure is comparable in kind, not in value).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from engine.prosody import ExpressiveStage
from engine.prosody.analysis import PitchProfile, track_f0
from engine.voices import ResemblyzerEncoder, VoiceProfile, cosine_similarity, nearest_by_embedding, nearest_by_pitch

#: The stand-in vocoder voices (espeak-ng variants of the Spanish voice); the first is the default.
VOICE_BANK = ("es", "es+m3", "es+m5", "es+m7", "es+f1", "es+f2", "es+f4", "es+klatt3")
PROFILE_TEXT = "Buenos días a todos. Gracias por acompañarnos hoy; tenemos mucho de qué hablar."


def voice_similarity(
    sources: Sequence[np.ndarray],
    translations: Sequence[str],
    stage: ExpressiveStage,
    render: Callable[[str, Path, str], np.ndarray],
    workdir: Path,
) -> dict[str, float]:
    """Mean VSim of the stage's output over the items, per way of choosing the voice (and the neutral default)."""
    encoder = ResemblyzerEncoder()
    profiles = []
    for k, voice in enumerate(VOICE_BANK):
        audio = render(PROFILE_TEXT, workdir / f"profile{k}.wav", voice)
        pitch = PitchProfile.of(track_f0(audio))
        embedding = encoder.embed(audio)
        profiles.append(VoiceProfile(k, pitch.median_hz, pitch.range_st, tuple(embedding.tolist())))
    choices: dict[str, Callable[[np.ndarray], int | None]] = {
        "default voice, stage off": lambda s: None,
        "default voice": lambda s: None,
        "nearest by pitch": lambda s: nearest_by_pitch(profiles, PitchProfile.of(track_f0(s))),
        "nearest by embedding": lambda s: nearest_by_embedding(profiles, encoder.embed(s)),
    }
    rendered: dict[tuple[int, int], np.ndarray] = {}
    figures = {}
    for name, choose in choices.items():
        similarities = []
        for i, (source, text) in enumerate(zip(sources, translations, strict=True)):
            k = choose(source) or 0
            if (i, k) not in rendered:
                audio = render(text, workdir / f"v{i}_{k}.wav", VOICE_BANK[k])
                rendered[i, k] = audio / max(1e-6, float(np.abs(audio).max())) * 0.9
            output = rendered[i, k] if name.endswith("off") else stage.apply(source, rendered[i, k], "spa", "eng")
            a, b = encoder.embed(source), encoder.embed(output)
            if a is not None and b is not None:
                similarities.append(cosine_similarity(a, b))
        figures[name] = float(np.mean(similarities))
    return figures


def print_voice_table(
    sources: Sequence[np.ndarray],
    translations: Sequence[str],
    stage: ExpressiveStage,
    render: Callable[[str, Path, str], np.ndarray],
    workdir: Path,
) -> None:
    figures = voice_similarity(sources, translations, stage, render, workdir)
    print("\n| voice choice (stage on unless said) | VSim |\n|---|---|")
    for name, value in figures.items():
        print(f"| {name} | {value:.3f} |")
    better = figures["nearest by embedding"] > figures["default voice"]
    print(f"target VSim by embedding > default voice: {'met' if better else 'NOT met'}")
