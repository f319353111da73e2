"""Rooms and conversations in a real browser (Chromium through Playwright), tiny model, one server.

Chromium's fake microphone plays a WAV file. The room test records what the room actually received from the
speaker's browser (a spy around the real ``Room.speak``), then runs a solo live session into each language on the
same chunks: every listener's captions must equal that session's committed text, and each listener's player must
have played all the speech the room handed it.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import re
import shutil

import numpy as np
import pytest

from engine.audio import load_audio, write_wav
from engine.constants import SAMPLE_RATE_HZ
from engine.stream_events import CommittedText, SpeechChunk
from tests.conftest import REPO, espeak, parse_subtitles, recording

pytest.importorskip("playwright")
if shutil.which("chromium") is None:
    pytest.fail("chromium is missing: run scripts/setup.sh (the README's test command does)", pytrace=False)

from playwright.sync_api import expect, sync_playwright

from tests.test_browser import choose, expect_audio, open_browser, serve_app

ARTIFACTS = REPO / "test-artifacts"
PORT = 7981  # this suite's own port (7980–7999)
LISTENERS = (("Spanish", "spa"), ("French", "fra"), ("Chinese", "cmn"))


@pytest.fixture(scope="module")
def mic_wav(speech_dir):
    utts = [
        load_audio(espeak("Good morning everyone, welcome to the room", speech_dir / "room-mic0.wav")),
        load_audio(espeak("We will now begin the meeting", speech_dir / "room-mic1.wav")),
    ]
    audio, _ = recording(utts, [1.0, 6.0])
    return write_wav(speech_dir / "room-mic.wav", audio)


@pytest.fixture(scope="module")
def server(tiny_settings, tmp_path_factory):
    from compose.settings import WebSettings

    # A backlog long enough that a busy test machine never has the room skip audio: the test compares the room's
    # text with a solo session's on the same audio.
    settings = dataclasses.replace(tiny_settings, web=WebSettings(port=PORT, max_backlog_s=300))
    yield from serve_app(settings, tmp_path_factory.mktemp("work"))


@pytest.fixture(scope="module")
def browser(mic_wav):
    with sync_playwright() as p:
        b = open_browser(p, mic_wav)
        yield b
        b.close()


def open_page(browser, url: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(url, wait_until="load")
    expect(page.locator("#model-status")).to_contain_text("ready", timeout=30_000)
    return context, page


def join(browser, url: str, code: str, languages: list[str]):
    """Listener pages, loaded side by side, each joined in its language."""
    opened = []
    for _ in languages:
        context = browser.new_context(viewport={"width": 1100, "height": 700})
        page = context.new_page()
        page.goto(f"{url}/?room={code}", wait_until="commit")
        opened.append((context, page))
    for (_, page), language in zip(opened, languages, strict=True):
        expect(page.locator("#listener-status")).to_contain_text(code, timeout=30_000)
        choose(page, "listener-lang", language)
        page.locator("#listener-join").click()
    for _, page in opened:
        expect(page.locator("#listener-status")).to_contain_text("listening in", timeout=10_000)
    return opened


def captions(page) -> str:
    """The committed captions as read, without the sign that marks a piece the safety stages flagged."""
    committed = page.locator("#listener-captions .committed")
    return " ".join(committed.inner_text().replace("⚠", " ").split()) if committed.count() else ""


def test_room_three_languages_late_joiner_and_end(browser, server, monkeypatch):
    from ui.rooms import Listener, Room

    app, url = server
    received: list[tuple[np.ndarray, int]] = []
    real_speak = Room.speak
    monkeypatch.setattr(Room, "speak", lambda self, s, r, now: (received.append((s, r)), real_speak(self, s, r, now)))
    handed: dict[tuple[str, str], list[float]] = collections.defaultdict(list)  # (lang, key) → pieces' seconds
    real_take = Listener.take_speech

    def take_speech(self):
        speech = real_take(self)
        if speech is not None:
            handed[self.lang, self.key].append(speech.shape[0] / SAMPLE_RATE_HZ)
        return speech

    monkeypatch.setattr(Listener, "take_speech", take_speech)

    speaker_context, speaker = open_page(browser, url)
    speaker.locator("#expressive input").uncheck()  # plain speech: a lighter step for a busy test machine
    speaker.locator("#room-open").click()
    expect(speaker.locator("#room-info")).to_contain_text("Room code", timeout=10_000)
    code = re.search(r"room=([A-Z0-9-]+)", speaker.locator("#room-info").inner_text()).group(1)
    assert len(code.replace("-", "")) == 13

    opened = join(browser, url, code, [name for name, _ in (*LISTENERS, LISTENERS[0])])  # two share Spanish
    contexts, listeners = [speaker_context, *(c for c, _ in opened)], [p for _, p in opened]
    expect(speaker.locator("#room-status")).to_contain_text("4 listening", timeout=10_000)

    speaker.locator("#room-mic").get_by_role("button", name="Record").click()
    # captions appear while the speaker speaks
    expect(listeners[0].locator("#listener-captions .committed")).not_to_be_empty(timeout=60_000)
    expect(speaker.locator("#room-status")).to_contain_text("cmn 1, fra 1, spa 2")
    [(late_context, late)] = join(browser, url, code, ["Spanish"])  # halfway
    contexts.append(late_context)
    speaker.wait_for_timeout(2500)
    ARTIFACTS.mkdir(exist_ok=True)  # for the README: the speaker's panel and three listeners
    speaker.locator("#room-speaker").first.screenshot(path=str(ARTIFACTS / "room-speaker.png"))
    for (_, lang), page in zip(LISTENERS, listeners, strict=False):
        page.locator("#room-listener").first.screenshot(path=str(ARTIFACTS / f"room-listener-{lang}.png"))
    speaker.locator("#room-mic").get_by_role("button", name="Stop").click()
    speaker.locator("#room-end").click()
    for page in [*listeners, late]:  # the speaker leaving ends the room for everyone, with a message
        expect(page.locator("#listener-status")).to_contain_text("speaker has left", timeout=60_000)
    expect(speaker.locator("#room-files")).to_contain_text("transcript", timeout=10_000)
    expect(speaker.locator("#room-files")).to_contain_text("translation.fra")

    texts = [captions(page) for page in listeners]
    assert texts[0] and texts[0] == texts[3]  # one language, one text
    assert len(set(texts[:3])) == 3  # three languages, three texts
    assert captions(late) == texts[0]  # the late joiner got the earlier transcript

    pipeline = app.runtime.pipeline()
    for (_, lang), text, page in zip(LISTENERS, texts, listeners, strict=False):
        session = pipeline.stream(lang, task="s2st", src_lang="eng", expressive=False)
        events = [e for s, r in received for e in session.push(s, r)] + session.finish()
        solo = "".join(e.text for e in events if isinstance(e, CommittedText))
        assert text == " ".join(solo.split()), lang
        # The listener's player (the Live tab's queued one): pieces back to back, none cut off, none lost. What
        # the server spoke can differ a little from the solo session's (a commit spoken in one piece or two), so
        # the player is held to what this language's listeners were handed (the early ones all got the same).
        log = page.evaluate("async () => { await window.parley.player.chain; return window.parley.player.log; }")
        assert log and any(isinstance(e, SpeechChunk) for e in events), lang
        for before, after in itertools.pairwise(log):
            assert after["start"] >= before["start"] + before["duration"] - 1e-6, lang  # no overlap
        played = [round(piece["duration"], 3) for piece in log]
        sent = max((pieces for (language, _), pieces in handed.items() if language == lang), key=sum)
        assert abs(sum(played) - sum(sent)) < 0.01 * len(log), f"{lang}: played {played}, handed {sent}"

    listeners[1].locator("#listener-download").click()
    expect(listeners[1].locator("#listener-files")).to_contain_text(".srt", timeout=10_000)
    expect(listeners[1].locator("#listener-files")).to_contain_text(".wav")
    for context in contexts:
        context.close()


def test_wrong_room_code_gets_a_plain_message(browser, server):
    context, page = open_page(browser, f"{server[1]}/?room=ABCD-EFGH-JKMNP")
    expect(page.locator("#listener-status")).to_contain_text("No room has this code")
    expect(page.locator("#listener-join")).to_be_hidden()
    context.close()


def record(page, elem_id: str, seconds: float) -> None:
    """Record, and wait until the recording is in the component (a button pressed sooner would send nothing)."""
    page.locator(f"#{elem_id}").get_by_role("button", name="Record").click()
    page.wait_for_timeout(seconds * 1000)
    page.locator(f"#{elem_id}").get_by_role("button", name="Stop").click()
    expect(page.locator(f"#{elem_id}").get_by_label("Download")).to_be_visible(timeout=10_000)


def test_conversation_two_devices_alternate_turns_and_export(browser, server, tmp_path):
    context_a, a = open_page(browser, server[1])
    a.get_by_role("tab", name="Conversation").click()
    a.locator("#conv-start").click()
    expect(a.locator("#conv-info")).to_contain_text("Conversation open", timeout=10_000)
    a.locator("#conv-me").get_by_text("Person A").click()
    link = a.locator("#conv-info a").get_attribute("href")
    context_b, b = open_page(browser, server[1] + link)
    expect(b.locator("#conv-info")).to_contain_text("Joined", timeout=10_000)

    record(a, "conv-mic", 3)
    a.locator("#conv-a").click()
    expect(a.locator("#conv-turns .turn")).to_have_count(1, timeout=30_000)
    expect(b.locator("#conv-turns .turn")).to_have_count(1, timeout=10_000)  # the other device reads it
    expect(b.locator("#conv-turns .heard")).to_contain_text("Person B (spa)")
    expect_audio(b, "conv-audio")  # and hears it, in Spanish

    record(b, "conv-mic", 3)
    b.locator("#conv-b").click()
    expect(b.locator("#conv-turns .turn")).to_have_count(2, timeout=30_000)
    expect(a.locator("#conv-turns .turn")).to_have_count(2, timeout=30_000)
    expect(a.locator("#conv-turns .turn-b .heard")).to_contain_text("Person A (eng)")
    expect_audio(a, "conv-audio")

    record(a, "conv-mic", 3)
    a.locator("#conv-auto").click()  # the direction found from the audio, its scores shown
    expect(b.locator("#conv-turns .turn")).to_have_count(3, timeout=30_000)
    expect(b.locator("#conv-turns .turn").nth(2)).to_contain_text(re.compile(r"found from the audio: -[\d.]+ vs -"))
    a.screenshot(path=str(ARTIFACTS / "conversation.png"), full_page=True)

    a.locator("#conv-export").click()
    expect(a.locator("#conv-files")).to_contain_text("conversation", timeout=10_000)
    with a.expect_download() as download:
        a.locator("#conv-files a[download$='.srt']").first.click()
    path = tmp_path / "conversation.srt"
    download.value.save_as(path)
    cues = parse_subtitles(path.read_text())
    assert len(cues) == 3 and all(len(text.splitlines()) == 2 for _, _, text in cues)  # both languages per cue
    context_a.close()
    context_b.close()
