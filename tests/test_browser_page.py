"""The page as people use it (issue 15), in a real browser (Debian chromium, Playwright) on the tiny model with the
settings a user gets by default: steady captions, settings that behave while streaming, speech played back to back,
Clear, errors that keep the page, long text, plain status words, the Verify tab, accessibility and layout.

One server and one browser for the module; each test checks several things on one stream or one page.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re

import numpy as np
import pytest
import soundfile as sf

from engine.audio import load_audio, write_wav
from tests.test_browser import choose, free_port, mic_wav, open_browser, serve_app  # noqa: F401  (mic_wav: the fake microphone)

from axe_playwright_python.sync_playwright import Axe  # isort: skip
from playwright.sync_api import expect, sync_playwright  # isort: skip  (after test_browser's checks)

#: axe-core's rule groups for what issue 15 asks: colour contrast, correct ARIA, and every control and region named.
#: Left out: color-contrast-enhanced, WCAG AAA's 7:1 (the issue and the README ask for AA's 4.5:1; Gradio's labels
#: are 4.8:1).
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["cat.color", "cat.aria", "cat.forms", "cat.name-role-value"]},
    "rules": {"color-contrast-enhanced": {"enabled": False}},
}


def axe_violations(page) -> list[str]:
    """axe-core's violations on the page as it is now: rule, and the first few elements that break it."""
    violations = Axe().run(page, options=AXE_OPTIONS).response["violations"]
    return [f"{v['id']}: {[n['target'] for n in v['nodes'][:4]]}" for v in violations]


#: WCAG AA contrast for normal text.
MIN_CONTRAST = 4.5

#: Contrast of an element's text against the first opaque background behind it (WCAG 2 relative luminance).
CONTRAST_JS = """(el) => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  let bg = [255, 255, 255];
  for (let e = el; e; e = e.parentElement) {
    const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] === 1)) { bg = c.slice(0, 3); break; }
  }
  const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(bg)];
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""

#: The captions' effective opacity (their own times every ancestor's) and whether a progress timer shows in them.
CAPTIONS_LOOK_JS = """() => {
  let opacity = 1;
  for (let e = document.getElementById('captions'); e; e = e.parentElement) opacity *= +getComputedStyle(e).opacity;
  const timers = [...document.querySelectorAll(
    '#captions .progress-text, #captions .eta-bar, #live-status .progress-text, #live-transcript .progress-text'
  )].filter((e) => e.offsetParent !== null).length;
  return [opacity, timers];
}"""


@pytest.fixture(scope="module")
def server(tiny_settings, tmp_path_factory):
    from compose.settings import WebSettings

    settings = dataclasses.replace(tiny_settings, web=WebSettings(port=free_port()))  # what a user gets by default
    yield from serve_app(settings, tmp_path_factory.mktemp("work"))


@pytest.fixture(scope="module")
def browser(mic_wav):  # noqa: F811
    with sync_playwright() as p:
        b = open_browser(p, mic_wav)
        yield b
        b.close()


def open_page(browser, url: str, width: int = 1280, height: int = 1000):
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    page = context.new_page()
    page.goto(url, wait_until="load")
    expect(page.locator("#model-status")).to_contain_text("ready", timeout=30_000)
    return page


@pytest.fixture
def page(browser, server):
    page = open_page(browser, server[1])
    yield page
    page.context.close()


def mic_button(page, name: str):
    return page.locator("#mic").get_by_role("button", name=name)


def visible_errors(page) -> int:
    """Outputs turned into an "Error" badge (their label and content hidden)."""
    return page.locator("[data-testid=status-tracker] .error").evaluate_all(
        "(els) => els.filter((e) => e.offsetParent !== null).length"
    )


def test_a_live_stream_looks_steady_plays_back_to_back_and_clears(page, server, tmp_path):
    for region in ("captions", "live-status", "model-status"):  # announced to screen readers
        expect(page.locator(f"#{region}")).to_have_attribute("aria-live", "polite")
    expect(page.locator("#live-files")).to_be_hidden()  # no large empty Downloads box before a recording
    names = page.locator("#mic button:visible, #live-clear").evaluate_all(
        "(bs) => bs.map((b) => (b.getAttribute('aria-label') || b.innerText).trim()).filter(Boolean)"
    )
    assert len(names) == len(set(names)) >= 3, names  # the recording's buttons each have their own name

    mic_button(page, "Record").focus()
    page.keyboard.press("Enter")  # started from the keyboard …
    expect(mic_button(page, "Stop")).to_be_visible(timeout=10_000)
    expect(page.locator("#src-lang input")).to_be_disabled()  # a stream keeps these settings, and the page says so
    expect(page.locator("#preset input")).to_be_disabled()
    expect(page.locator("#expressive input")).to_be_disabled()
    expect(page.locator("#settings-note")).to_contain_text("stay as the stream started")
    expect(page.locator("#live-clear")).to_be_disabled()  # Clear cannot silently start a new session
    looks = []
    for _ in range(32):  # every 250 ms for 8 s while captions update
        looks.append(page.evaluate(CAPTIONS_LOOK_JS))
        page.wait_for_timeout(250)
    expect(page.locator("#captions .committed")).not_to_be_empty(timeout=30_000)
    assert [o for o, _ in looks] == [1.0] * len(looks)  # the captions never fade
    assert all(timers == 0 for _, timers in looks)  # and no progress timer shows on streaming outputs
    page.keyboard.press("Enter")  # … and stopped from it: the focus followed the button
    expect(mic_button(page, "Record")).to_be_visible(timeout=10_000)
    expect(page.locator("#live-files")).to_contain_text(re.compile(r"translation\s*\.wav"), timeout=30_000)
    expect(page.locator("#src-lang input")).to_be_enabled()
    expect(page.locator("#settings-note")).not_to_contain_text("stay as")

    # The player's timeline: every piece in order, none starting before the previous one ended, all played through.
    page.wait_for_function(
        "() => { const p = window.parley.player; const last = p.log[p.log.length - 1];"
        " return last && p.ctx.currentTime > last.start + last.duration; }",
        timeout=60_000,
    )
    log = page.evaluate("() => window.parley.player.log")
    assert len(log) >= 2
    for before, after in itertools.pairwise(log):
        assert after["start"] >= before["start"] + before["duration"] - 1e-6  # no overlap
    played = np.concatenate([sf.read(_fetch(page, piece["url"], tmp_path), dtype="float32")[0] for piece in log])
    assert abs(sum(piece["duration"] for piece in log) - played.size / 16_000) < 0.01 * len(log)
    with page.expect_download() as download:
        page.locator("#live-files a[download$='.wav']").first.click()
    saved, rate = sf.read(download.value.path(), dtype="float32")
    assert rate == 16_000 and saved.shape == played.shape  # nothing lost, nothing added
    np.testing.assert_allclose(saved, played, atol=2 / 32768)  # the downloaded WAV is what was played

    # Tentative text and the placeholder are readable (contrast checked on the styles the page applies).
    page.evaluate("() => document.querySelector('#captions .captions').insertAdjacentHTML('beforeend',"
                  " '<span class=\"partial\" id=\"probe\">tentative</span>')")  # fmt: skip
    assert page.locator("#probe").evaluate(CONTRAST_JS) >= MIN_CONTRAST
    page.locator("#live-clear").click()
    expect(page.locator("#live-status")).to_contain_text("Cleared")
    expect(page.locator("#live-files")).to_be_hidden()  # the downloads went too
    expect(page.locator("#live-transcript textarea")).to_have_value("")
    expect(page.locator("#captions .committed")).to_have_count(0)
    assert page.locator("#captions .placeholder").evaluate(CONTRAST_JS) >= MIN_CONTRAST


def test_a_target_and_output_changed_mid_stream_apply_from_the_next_sentence(page, server):
    app = server[0]
    mic_button(page, "Record").click()
    expect(mic_button(page, "Stop")).to_be_visible(timeout=10_000)
    expect(page.locator("#tgt-lang input")).to_be_enabled()  # what a listener may change while recording
    expect(page.locator("#task input").first).to_be_enabled()
    expect(page.locator("#settings-note")).to_contain_text("applies from the next sentence")
    page.wait_for_timeout(8000)  # 8 s into the stream
    [live] = [live for _, live in app.registry.idle(math.inf)]  # this page's stream, on the server
    _wait_for_segment(page, live, lambda e: True)  # (a busy machine may not have ended a sentence yet)
    before = len(live.stream.segments)
    shown = page.locator("#captions .committed").inner_text()
    choose(page, "tgt-lang", "French")
    expect(page.locator("#settings-note")).to_contain_text("From the next sentence the translation is in French")
    assert not axe_violations(page), axe_violations(page)  # while recording, a notice showing
    french = _wait_for_segment(page, live, lambda e: e.tgt_lang == "fra")
    targets = [e.tgt_lang for e in live.stream.segments]
    assert before >= 1 and targets[:before] == ["spa"] * before  # earlier sentences stay as they were
    assert targets[:french] == ["spa"] * french and set(targets[french:]) == {"fra"}  # the change splits no sentence
    assert page.locator("#captions .committed").inner_text().startswith(shown.strip())

    page.locator("#task").get_by_text("Text only").click()
    expect(page.locator("#settings-note")).to_contain_text(re.compile(r"in French .*, shown, not spoken"))
    silent = _wait_for_segment(page, live, lambda e: not e.spoken)
    page.wait_for_timeout(1500)  # speech of the sentences before it reaches the player
    pieces = page.evaluate("() => window.parley.player.log.length")
    _wait_for_segment(page, live, lambda e: not e.spoken, after=silent + 1)
    page.wait_for_timeout(1500)
    assert page.evaluate("() => window.parley.player.log.length") == pieces  # text only: no new speech
    assert all(e.tgt_lang == "fra" for e in live.stream.segments[silent:])
    mic_button(page, "Stop").click()
    expect(mic_button(page, "Record")).to_be_visible(timeout=30_000)


def _wait_for_segment(page, live, match, after: int = 0, timeout_s: float = 60.0) -> int:
    """Index of the first sentence from ``after`` on that the stream ended and that ``match`` accepts."""
    for _ in range(int(timeout_s * 4)):
        found = [i for i, e in enumerate(live.stream.segments) if i >= after and match(e)]
        if found:
            return found[0]
        page.wait_for_timeout(250)
    raise AssertionError(f"no such sentence in {live.stream.segments}")


def _fetch(page, url: str, tmp_path):
    path = tmp_path / f"piece-{abs(hash(url))}.wav"
    path.write_bytes(page.request.get(url).body())
    return path


def test_long_text_goes_in_sentence_batches_and_the_limit_is_told(page, server):
    page.locator("#task").get_by_text("Text only").click()
    page.get_by_role("tab", name="Text").click()
    expect(page.locator("#text-in")).to_contain_text("5,000 characters")  # the limit is stated up front
    paragraphs = [" ".join(f"This is sentence {i} of paragraph {p}." for i in range(6)) for p in range(3)]
    page.evaluate(
        "() => { window.seen = new Set(); new MutationObserver(() => { const t = document.body.innerText;"
        " for (const m of t.matchAll(/Translated \\d+ of \\d+ sentences/g)) window.seen.add(m[0]); })"
        ".observe(document.body, { childList: true, subtree: true, characterData: true }); }"
    )
    page.locator("#text-in textarea").fill("\n".join(paragraphs))
    page.locator("#text-go").click()
    expect(page.locator("#text-out textarea")).not_to_have_value("", timeout=60_000)
    lines = page.locator("#text-out textarea").input_value().split("\n")
    assert len(lines) == 3 and all(line.strip() for line in lines)  # one line per paragraph
    assert "Translated 8 of 18 sentences" in page.evaluate("() => [...window.seen]")  # progress per batch

    page.locator("#text-in textarea").fill("word " * 1001)  # 5,005 characters
    page.locator("#text-go").click()
    expect(page.get_by_text("at most 5,000 are translated at once")).to_have_count(1, timeout=30_000)
    assert visible_errors(page) == 0  # the message shows once; the outputs keep their labels
    expect(page.locator("#text-out")).to_contain_text("Translation")
    expect(page.locator("#text-audio")).to_contain_text("Spoken translation")


def test_an_upload_error_leaves_the_box_usable_and_a_new_file_clears_old_results(page, server, tmp_path):
    talk = load_audio(tmp_path_wav := _espeak_wav(tmp_path))
    page.locator("#task").get_by_text("Text only").click()
    page.get_by_role("tab", name="File").click()
    page.locator("#file-in input[type=file]").set_input_files(str(tmp_path_wav))
    page.locator("#file-go").click()
    expect(page.locator("#file-translation textarea")).not_to_have_value("", timeout=60_000)
    expect(page.locator("#file-files")).to_be_visible()
    again = write_wav(tmp_path / "again.wav", talk[: talk.size // 2])
    page.locator("#file-in").get_by_label("Clear").first.click()
    page.locator("#file-in input[type=file]").set_input_files(str(again))
    expect(page.locator("#file-translation textarea")).to_have_value("")  # the old file's results left at once
    expect(page.locator("#file-files")).to_be_hidden()

    big = tmp_path / "big.wav"
    with big.open("wb") as f:  # sparse: just over the size limit without writing it
        f.truncate((server[0].web.max_file_mb + 1) * 1024 * 1024)
    page.locator("#file-in").get_by_label("Clear").first.click()
    page.locator("#file-in input[type=file]").set_input_files(str(big))
    expect(page.get_by_text("exceed the maximum allowed size")).to_have_count(1, timeout=30_000)
    assert visible_errors(page) == 0  # no "Error" badge in place of the upload box
    expect(page.locator("#file-in")).to_contain_text("Recording")
    page.locator("#file-in input[type=file]").set_input_files(str(again))  # usable again at once
    page.locator("#file-go").click()
    expect(page.locator("#file-translation textarea")).not_to_have_value("", timeout=60_000)


def _espeak_wav(tmp_path):
    from tests.conftest import espeak

    return espeak("Good morning. This file is about the weather and the train station.", tmp_path / "talk.wav")


def test_settings_layout_and_dropdowns(page, server):
    for box in ("src-lang", "tgt-lang", "preset"):  # language and preset names are never cut off under the arrow
        width, room = page.locator(f"#{box} input").evaluate("(i) => [i.scrollWidth, i.clientWidth]")
        assert width <= room, box
    options = page.locator("#preset input")
    options.click()
    presets = [t.strip() for t in page.locator("#preset [role=option]").all_inner_texts()]
    assert len(presets) == 4 and all(re.search(r"\d\.\d s", t) for t in presets), presets  # said in seconds
    page.keyboard.press("Escape")

    page.locator("#src-lang input").click()
    listbox = page.locator("#src-lang [role=listbox]")
    chosen = listbox.locator("[aria-selected=true]")
    expect(chosen).to_contain_text("English")
    page.wait_for_timeout(300)
    box, item = listbox.bounding_box(), chosen.bounding_box()
    assert box["y"] <= item["y"] and item["y"] + item["height"] <= box["y"] + box["height"]  # opens at the choice
    page.keyboard.press("Tab")
    expect(listbox).to_have_count(0)  # leaving with Tab closes the list

    page.get_by_role("tab", name="Verify watermark").click()
    expect(page.locator("#settings-row")).to_be_hidden()  # meaningless there
    page.get_by_role("tab", name="Live").click()
    expect(page.locator("#settings-row")).to_be_visible()


def test_axe_finds_no_contrast_aria_or_label_fault_on_any_tab(page, server):
    found = {}
    for tab in ("Live", "File", "Text", "Conversation", "Verify watermark"):
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(300)
        found[tab] = axe_violations(page)
    assert found == {tab: [] for tab in found}, found


def test_on_a_phone_the_captions_show_beside_record_while_recording(browser, server):
    from tests.conftest import REPO

    page = open_page(browser, server[1], width=390, height=844)
    mic_button(page, "Record").click()
    expect(page.locator("#captions .committed")).not_to_be_empty(timeout=30_000)
    viewport = page.viewport_size
    for element in (page.locator("#captions"), mic_button(page, "Stop")):
        box = element.bounding_box()
        assert box["y"] >= 0 and box["y"] + min(box["height"], 60) <= viewport["height"]
    (REPO / "test-artifacts").mkdir(exist_ok=True)
    page.screenshot(path=str(REPO / "test-artifacts" / "phone-recording.png"))
    mic_button(page, "Stop").click()
    expect(mic_button(page, "Record")).to_be_visible(timeout=30_000)
    page.context.close()


def test_verify_tab_words_and_plot(page, server, mic_wav, tmp_path, capsys):  # noqa: F811
    from safety.marking import SpeechMarker
    from safety.watermark import create_watermarker
    from safety.watermark.__main__ import main as cli
    from safety.watermark.interface import describe_payload

    marker = SpeechMarker.for_session(create_watermarker(), deployment_id=7, session_key="page-test")
    marked = write_wav(tmp_path / "marked.wav", marker(load_audio(mic_wav)))
    page.get_by_role("tab", name="Verify watermark").click()
    page.locator("#verify-in input[type=file]").set_input_files(str(marked))
    page.locator("#verify-go").click()
    expect(page.locator("#verify-result")).to_contain_text("Watermark found", timeout=30_000)
    words = describe_payload(marker.payload)
    expect(page.locator("#verify-result")).to_contain_text(words)
    assert cli(["detect", str(marked)]) == 0
    assert words in capsys.readouterr().out  # the CLI names the session the same way
    expect(page.locator("#verify-plot")).to_contain_text("rare by chance above this")  # the threshold line

    short = write_wav(tmp_path / "short.wav", marker(load_audio(mic_wav)[16_000:20_000]))  # 0.25 s, marked
    page.locator("#verify-in").get_by_label("Clear").click()
    page.locator("#verify-in input[type=file]").set_input_files(str(short))
    page.locator("#verify-go").click()
    needs = f"needs {create_watermarker().min_payload_s:.1f} s of sound"  # the watermark's own figure, not the page's
    expect(page.locator("#verify-result")).to_contain_text(f"too short to hold a payload (it {needs})", timeout=30_000)

    silent = write_wav(tmp_path / "silent.wav", np.zeros(32_000, np.float32))
    page.locator("#verify-in").get_by_label("Clear").click()
    page.locator("#verify-in input[type=file]").set_input_files(str(silent))
    page.locator("#verify-go").click()
    expect(page.locator("#verify-result")).to_contain_text("silent, so it cannot carry a watermark", timeout=30_000)
    expect(page.get_by_text("Check the microphone")).to_have_count(0)  # no toast about a microphone here

    # Short speech from the Text tab carries a payload that can be read (or the page says it is too short).
    page.get_by_role("tab", name="Text").click()
    page.locator("#text-in textarea").fill("Good morning.")
    page.locator("#text-go").click()
    link = page.locator("#text-audio a.download-link").first
    expect(link).to_have_attribute("href", re.compile(r"/gradio_api/file=.+"), timeout=30_000)
    spoken = tmp_path / "spoken.wav"
    spoken.write_bytes(page.request.get(link.get_attribute("href")).body())
    page.get_by_role("tab", name="Verify watermark").click()
    page.locator("#verify-in").get_by_label("Clear").click()
    page.locator("#verify-in input[type=file]").set_input_files(str(spoken))
    page.locator("#verify-go").click()
    expect(page.locator("#verify-result")).to_contain_text("atermark found", timeout=30_000)
    expect(page.locator("#verify-result")).to_contain_text(re.compile(r"session \d+|too short to hold a payload"))
    expect(page.locator("#verify-result")).not_to_contain_text("could not be read")


def test_a_model_that_failed_says_so_once_and_stops_recording(browser, tiny_options, tmp_path, monkeypatch):
    from compose.settings import Settings, WebSettings
    from engine.options import EngineOptions
    from ui.app import ParleyApp, launch
    from ui.runtime import ModelRuntime

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache: the default model is nowhere to be found
    port = free_port()
    engine = EngineOptions(cache_dir=tiny_options.cache_dir, device="cpu", hub_offline=True)
    runtime = ModelRuntime(Settings(engine=engine, web=WebSettings(port=port)))
    runtime.start()
    app = ParleyApp(runtime, tmp_path)
    demo = app.build()
    launch(app, demo, block=False)
    try:
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}", wait_until="load")
        status = page.locator("#model-status")
        expect(status).to_contain_text("could not be loaded", timeout=60_000)
        words = status.inner_text()
        assert "--" not in words and "Could not load" not in words  # no command-line flags for a web visitor
        assert words.count("could not be loaded") == 1
        mic_button(page, "Record").click()
        expect(mic_button(page, "Record")).to_be_visible(timeout=15_000)  # recording stopped by itself
        page.wait_for_timeout(2000)
        expect(page.locator("#live-status")).to_contain_text("Recording stopped")
        assert page.get_by_text("Error", exact=True).count() == 0  # no toast per 0.5 s chunk
        assert visible_errors(page) == 0
        page.locator("#use-tiny").click()  # allowed: this server listens on 127.0.0.1 only
        expect(status).to_contain_text("meaningless output", timeout=60_000)
        expect(page.locator("#use-tiny")).to_be_hidden()
        page.close()
    finally:
        demo.close()
