"""Parley entry point (also the Hugging Face Space's ``app_file``): ``python app.py --help``.

``python app.py --desktop ...`` runs the desktop live mode (:mod:`ui.desktop`; ``--desktop --help``) and
``python app.py translate ...`` translates files (:mod:`ui.cli`; ``translate --help``). All three read the same
settings (:mod:`compose.settings`) and build the same pipeline (:mod:`compose.pipeline`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def main(argv: list[str] | None = None) -> None:
    from compose.settings import host_variables
    from ui.heap import MALLOPT_BY_VARIABLE, bound_heap_growth

    # Before any thread starts: a server's memory otherwise grows by fragmentation (ui/heap.py).
    bound_heap_growth(host_variables(MALLOPT_BY_VARIABLE))
    argv = sys.argv[1:] if argv is None else argv
    if "--desktop" in argv:  # dispatched before Gradio is imported: the desktop mode needs no browser stack
        from ui.desktop import main as desktop_main

        sys.exit(desktop_main([arg for arg in argv if arg != "--desktop"]))
    if argv[:1] == ["translate"]:
        from ui.cli import main as cli_main

        sys.exit(cli_main(argv))
    # No outside requests from an offline launch: Gradio's usage analytics are off unless the host turns them on.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from compose.settings import WEB, add_arguments, load_settings

    parser = argparse.ArgumentParser(
        description="Parley: live speech translation in the browser. Also: --desktop (microphone to speakers, no "
        "browser) and 'translate FILE...' (files); each takes --help."
    )
    parser.add_argument(  # handled above; listed so that --help shows it
        "--desktop", action="store_true", help="microphone to speakers in this terminal, no browser (--desktop --help)"
    )
    add_arguments(parser, WEB)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args)
    except ValueError as e:
        parser.error(str(e))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from compose.stopping import stopping_like_ctrl_c
    from ui.app import build_app, launch

    with stopping_like_ctrl_c():  # a stop by signal also shuts down a Ray head started here
        launch(*build_app(settings))


if __name__ == "__main__":
    main()
