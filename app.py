"""Parley entry point (also the Hugging Face Space's ``app_file``): ``python app.py --help``.

``python app.py --desktop ...`` runs the desktop live mode instead (:mod:`ui.desktop`; ``--desktop --help``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if "--desktop" in argv:  # dispatched before Gradio is imported: the desktop mode needs no browser stack
        from ui.desktop import main as desktop_main

        sys.exit(desktop_main([arg for arg in argv if arg != "--desktop"]))
    # No outside requests from an offline launch: Gradio's usage analytics are off unless the host turns them on.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from engine.options import EngineOptions

    parser = argparse.ArgumentParser(description="Parley: live speech translation in the browser.")
    parser.add_argument("--host", default=os.environ.get("PARLEY_HOST", "127.0.0.1"), help="address to serve on")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PARLEY_PORT", "7860")), help="port")
    parser.add_argument("--share", action="store_true", help="ask Gradio for a public share link (off by default)")
    parser.add_argument(  # handled above; listed so that --help shows it
        "--desktop", action="store_true", help="microphone to speakers in this terminal, no browser (--desktop --help)"
    )
    EngineOptions.add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from ui.app import UiOptions, build_app, launch

    ui = UiOptions(deployment_id=int(os.environ.get("PARLEY_DEPLOYMENT_ID", "0")))
    launch(build_app(EngineOptions.from_args(args), ui), args.host, args.port, args.share, ui)


if __name__ == "__main__":
    main()
