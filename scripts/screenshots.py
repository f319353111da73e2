"""Screenshots of every tab with real content, for the README: ``.venv/bin/python scripts/screenshots.py``.

Serves the app with the offline tiny model (so the text is meaningless), drives each tab in headless chromium the
way the browser tests do (a WAV as the fake microphone), and writes ``assets/screenshots/<tab>.png``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from playwright.sync_api import expect, sync_playwright

from compose.settings import Settings, WebSettings
from engine.audio import load_audio, write_wav
from engine.options import EngineOptions
from safety.marking import SpeechMarker
from safety.watermark import create_watermarker
from tests.conftest import TEST_CACHE, espeak, recording
from tests.test_browser import BROWSER_FLAGS, free_port, record
from ui.app import ParleyApp, launch
from ui.runtime import ModelRuntime

OUT = Path(__file__).resolve().parent.parent / "assets" / "screenshots"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp())
    utts = [
        load_audio(espeak("Good morning, this is a test of live translation", work / "a.wav")),
        load_audio(espeak("Thank you for listening to the end", work / "b.wav")),
    ]
    mic = write_wav(work / "mic.wav", recording(utts, [1.2, 3.0])[0])
    port = free_port()
    settings = Settings(
        engine=EngineOptions(model="tiny", cache_dir=TEST_CACHE, device="cpu"), web=WebSettings(port=port)
    )
    runtime = ModelRuntime(settings)
    runtime.start()
    runtime.wait(120)
    app = ParleyApp(runtime, work)
    demo = app.build()
    launch(app, demo, block=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=[*BROWSER_FLAGS, f"--use-file-for-fake-audio-capture={mic}"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"http://127.0.0.1:{port}", wait_until="load")
        expect(page.locator("#model-status")).to_contain_text("ready", timeout=60_000)

        record(page, 9)
        expect(page.locator("#live-files")).to_contain_text("srt", timeout=60_000)
        page.screenshot(path=str(OUT / "live.png"), full_page=True)

        page.get_by_role("tab", name="File").click()
        page.locator("#file-in input[type=file]").set_input_files(str(mic))
        page.locator("#file-go").click()
        expect(page.locator("#file-translation textarea")).not_to_have_value("", timeout=60_000)
        page.screenshot(path=str(OUT / "file.png"), full_page=True)

        page.get_by_role("tab", name="Text").click()
        page.locator("#text-in textarea").fill("Good morning, everyone. Where is the train station?")
        page.locator("#text-go").click()
        expect(page.locator("#text-out textarea")).not_to_have_value("", timeout=60_000)
        page.screenshot(path=str(OUT / "text.png"), full_page=True)

        marked = write_wav(work / "marked.wav", SpeechMarker.for_session(create_watermarker(), 7, "demo")(utts[0]))
        page.get_by_role("tab", name="Verify watermark").click()
        page.locator("#verify-in input[type=file]").set_input_files(str(marked))
        page.locator("#verify-go").click()
        expect(page.locator("#verify-result")).to_contain_text("Watermark found", timeout=60_000)
        page.wait_for_timeout(1000)  # let the plot draw
        page.screenshot(path=str(OUT / "verify.png"), full_page=True)

        phone = browser.new_page(viewport={"width": 390, "height": 844})  # while recording: captions beside Record
        phone.goto(f"http://127.0.0.1:{port}", wait_until="load")
        expect(phone.locator("#model-status")).to_contain_text("ready", timeout=60_000)
        phone.locator("#mic").get_by_role("button", name="Record").click()
        expect(phone.locator("#captions .committed")).not_to_be_empty(timeout=60_000)
        phone.wait_for_timeout(2000)
        phone.screenshot(path=str(OUT / "phone.png"))
        phone.locator("#mic").get_by_role("button", name="Stop").click()
        browser.close()
    demo.close()
    print(f"wrote {', '.join(sorted(p.name for p in OUT.glob('*.png')))} to {OUT}")


if __name__ == "__main__":
    main()
