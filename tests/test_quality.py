"""bench/quality.py end to end on the tiny model over a small generated manifest (figures meaningless, shape real)."""

import re
import subprocess
import sys

import pytest

from bench.quality import read_manifest
from tests.conftest import REPO, TEST_CACHE, espeak

ITEMS = [
    ("Good morning everyone", "Buenos días a todos"),
    ("Thank you for coming today", "Gracias por venir hoy"),
    ("See you next week", "Hasta la semana que viene"),
]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("manifest")
    lines = ["audio\ttranscript\ttranslation"]
    for i, (source, reference) in enumerate(ITEMS):
        espeak(source, folder / f"item{i}.wav")
        lines.append(f"item{i}.wav\t{source}\t{reference}")
    path = folder / "manifest.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.timeout(600)
def test_quality_harness_runs_end_to_end_on_the_tiny_model(manifest):
    command = [sys.executable, "bench/quality.py", str(manifest), "--src", "eng", "--tgt", "spa", "--output",
               "speech", "--presets", "low", "segment", "--model", "tiny", "--device", "cpu",
               "--cache-dir", str(TEST_CACHE)]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=580)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "Quality over 3 recordings" in out and "meaningless" in out
    header = next(line for line in out.splitlines() if line.strip().startswith("mode"))
    assert header.split()[1:] == ["BLEU", "chrF", "ASR-BLEU", "src", "chrF", "erasure", "ΔBLEU", "ΔchrF"]
    number = r"-?\d+\.\d\d"
    assert re.search(rf"^\s+file(\s+{number}){{4}}(\s+–){{3}}$", out, re.M), out  # no erasure or gap offline
    for preset in ("low", "segment"):
        row = re.search(rf"^\s+{preset}((\s+{number}){{7}})$", out, re.M)
        assert row, out
        bleu, chrf, asr_bleu, src_chrf, erasure, *_ = (float(x) for x in row.group(1).split())
        assert 0 <= bleu <= 100 and 0 <= chrf <= 100 and 0 <= asr_bleu <= 100 and 0 <= src_chrf <= 100
        assert erasure >= 0


def test_manifest_needs_its_columns(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("file\ttext\nitem.wav\thello\n", encoding="utf-8")
    with pytest.raises(ValueError, match="audio, transcript, translation"):
        read_manifest(path)
    path.write_text("audio\ttranscript\ttranslation\nitem.wav\thello\t\n", encoding="utf-8")
    with pytest.raises(ValueError, match="reference translation is empty"):
        read_manifest(path)
