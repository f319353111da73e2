"""The composition root: settings read once at the entry point, and the one function that builds the pipeline."""
