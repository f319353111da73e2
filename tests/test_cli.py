"""``python app.py translate`` end to end, in a real subprocess."""

import os
import subprocess
import sys

import pytest
import soundfile as sf

from tests.conftest import REPO, TEST_CACHE, parse_subtitles


def run_cli(*args, stdin=None):
    env = os.environ | {"HF_HUB_OFFLINE": "1", "PARLEY_CACHE_DIR": str(TEST_CACHE), "PARLEY_DEVICE": "cpu"}
    return subprocess.run(
        [sys.executable, "app.py", *args], cwd=REPO, env=env, input=stdin, capture_output=True, text=True
    )


def test_help_lists_tasks_and_flags():
    proc = run_cli("translate", "--help")
    assert proc.returncode == 0
    for word in ("--tgt", "--src", "--task", "s2st", "asr", "t2tt", "--out", "--model", "--int8", "Examples"):
        assert word in proc.stdout


def test_sixty_second_recording_end_to_end(talk_wav, tmp_path):
    proc = run_cli(
        "translate", str(talk_wav), "--tgt", "spa", "--src", "eng", "--model", "tiny", "--out", str(tmp_path)
    )
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {tmp_path / 'talk.spa.wav'}" in proc.stdout
    assert "Traceback" not in proc.stderr
    wav, rate = sf.read(tmp_path / "talk.spa.wav")
    assert rate == 16000 and wav.shape[0] > rate
    for name in ("talk.spa.srt", "talk.spa.vtt", "talk.eng.srt"):
        assert len(parse_subtitles((tmp_path / name).read_text(encoding="utf-8"))) == 9


def test_one_bad_input_does_not_stop_the_others(hello_wav, tmp_path):
    bad = tmp_path / "broken.mp3"
    bad.write_bytes(b"\xff\xfb" + b"\x00" * 100)
    proc = run_cli("translate", str(bad), str(hello_wav), "--task", "s2tt", "--tgt", "fra", "--model", "tiny",
                   "--out", str(tmp_path))  # fmt: skip
    assert proc.returncode == 1
    assert "broken.mp3: error: The file could not be read as audio" in proc.stderr
    assert (tmp_path / "hello.fra.srt").exists() and "Traceback" not in proc.stderr


def test_text_tasks_from_file_and_stdin(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("Good morning, everyone.\n\nWhere is the train station?\n", encoding="utf-8")
    proc = run_cli("translate", str(text), "--task", "t2st", "--src", "eng", "--tgt", "deu", "--model", "tiny",
                   "--out", str(tmp_path))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len((tmp_path / "notes.deu.txt").read_text(encoding="utf-8").splitlines()) == 2
    assert sf.info(tmp_path / "notes.deu.wav").duration > 0.5
    proc = run_cli("translate", "-", "--task", "t2tt", "--src", "eng", "--tgt", "ita", "--model", "tiny",
                   "--out", str(tmp_path), stdin="Thank you.\n")  # fmt: skip
    assert proc.returncode == 0 and (tmp_path / "stdin.ita.txt").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tgt", "xyz"], "Unknown language 'xyz'"),
        (["--tgt", "ell"], "not supported for speech output"),
        (["--task", "asr"], "--src is required for asr"),
        (["--task", "t2tt", "--tgt", "spa"], "--src is required for t2tt"),
        (["--tgt", "spa", "--device", "cuda"], "no CUDA GPU"),
    ],
)
def test_usage_errors_exit_2_in_plain_words(hello_wav, args, message):
    proc = run_cli("translate", str(hello_wav), "--model", "tiny", *args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_unreachable_hub_says_what_to_do(hello_wav, tmp_path):
    env_home = {"HF_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "app.py", "translate", str(hello_wav), "--tgt", "spa"],
        cwd=REPO, env=os.environ | env_home | {"HF_HUB_OFFLINE": "1"}, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "cannot be reached" in proc.stderr and "--model tiny" in proc.stderr
