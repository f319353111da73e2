"""Print the bad-input suite's kinds and the message each gets: ``python -m tests.bad_input_table``.

The same cases as :mod:`tests.test_bad_input`, against the same kind of server (tiny model, the suite's limits),
as a Markdown table for the issue's closing note.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

from engine.audio import load_audio
from tests.test_bad_input import CASES, CLI_FILES, bad_input_settings, cli_message, make_material, run_cli_on_bad_files
from tests.wire import serve


def main() -> int:
    from compose.settings import Settings
    from engine.options import EngineOptions
    from tests.conftest import TEST_CACHE, espeak

    logging.basicConfig(level=logging.WARNING)
    tiny = Settings(engine=EngineOptions(model="tiny", cache_dir=TEST_CACHE, device="cpu"))
    with tempfile.TemporaryDirectory(prefix="parley-bad-input-") as folder:
        work = Path(folder)
        speech = load_audio(espeak("Hello, this is a short test of the translation engine.", work / "hello.wav"))
        (work / "server").mkdir()
        served = serve(bad_input_settings(tiny, 7923), work / "server")
        material = make_material(served, speech)
        rows = []
        try:
            from tests.test_bad_input import run_case

            for case in CASES:
                outcome = run_case(case, material)
                rows.append((case.endpoint, case.kind, outcome.message or "(served)"))
        finally:
            served.close()
        (work / "cli").mkdir()
        proc = run_cli_on_bad_files(work / "cli", speech, TEST_CACHE)
        rows += [("CLI", name, cli_message(proc, work / "cli" / name).replace(str(work), "…")) for name in CLI_FILES]
    print(f"{len(rows)} kinds\n\n| endpoint | kind | message |\n| --- | --- | --- |")
    for endpoint, kind, message in rows:
        print(f"| {endpoint} | {kind} | {message.replace('|', '/')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
