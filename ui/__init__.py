"""Front ends: the Gradio web app, the desktop live mode and the command line. Each builds the pipeline through
:mod:`compose` and differs from the others only in how people reach it."""
