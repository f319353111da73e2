"""Parley's model pool on Ray Serve (optional: ``pip install "ray[serve]"``; ``--backend ray``).

Replicas (:mod:`cluster.replica`) each load the model once and run an :class:`engine.scheduler.InferenceScheduler`;
front ends are clients (:mod:`cluster.pool`) that keep every session's state and send stateless calls. Only
``compose`` imports this package, and only when the backend is ``ray``: the single-process mode never imports Ray.
"""
