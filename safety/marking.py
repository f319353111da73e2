"""Marking what Parley says: every synthetic sample goes through a :class:`SpeechMarker` before anyone hears it.

The payload says where the speech came from: a 16-bit deployment id (who runs this server) and a 16-bit session id
derived from the browser session or run, so a recording found later can be traced to a deployment and a session
without storing anything about the person.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from safety.watermark import Watermarker, make_payload

SAMPLE_RATE_HZ = 16_000


def session_id(session_key: str) -> int:
    """A stable 16-bit id for a session key (not reversible to the key)."""
    return int.from_bytes(hashlib.blake2b(session_key.encode(), digest_size=2).digest(), "big")


@dataclass(frozen=True)
class SpeechMarker:
    """Embeds one payload into every piece of 16 kHz synthetic speech it is given."""

    watermarker: Watermarker
    payload: int

    @classmethod
    def for_session(cls, watermarker: Watermarker, deployment_id: int, session_key: str) -> SpeechMarker:
        return cls(watermarker, make_payload(deployment_id, session_id(session_key)))

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        if audio.size == 0:
            return audio
        return self.watermarker.embed(audio, SAMPLE_RATE_HZ, self.payload).astype(np.float32)
