"""The Gradio front end. For now a placeholder page: the live, file and text tabs arrive with their issues."""

from __future__ import annotations

import gradio as gr

from engine.languages import Capability, all_languages, languages_with
from engine.options import EngineOptions


def build_app(options: EngineOptions) -> gr.Blocks:
    speech_out = len(languages_with(Capability.SPEECH_OUTPUT))
    with gr.Blocks(title="Parley") as demo:
        gr.Markdown(
            "# Parley\n"
            "Live speech translation with SeamlessM4T v2. The interface is being built; the engine already "
            "translates files from the command line: `python -m engine translate FILE --tgt spa`.\n\n"
            f"Model: `{options.model}` · {len(all_languages())} languages, {speech_out} with speech output."
        )
    return demo
