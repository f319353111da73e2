"""The model calls a streaming session makes, behind one narrow interface.

A :class:`StreamingBackend` hides the token layout (decoder start, language token, EOS, padding) and the tensors: a
session hands it 16 kHz audio and plain token lists and gets plain token lists, text and speech back. The
:class:`~engine.translator.Translator` implements it on one loaded model; a scheduler that batches calls across
sessions, or a client of a remote model pool, implements the same five methods, and a fake in the tests
implements them without any model. A backend may also offer ``take_notices() -> list[str]`` (a remote pool's
"reconnecting"), which the session emits as notices. Every call carries what it needs (the encoder state, the
forced prefix, the target and the budget), so no call depends on an earlier one having gone to the same place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

#: What :meth:`StreamingBackend.encode` returns: opaque to the session, passed back into the other calls.
EncoderState = Any


class StreamingBackend(Protocol):
    def encode(self, audio: np.ndarray) -> EncoderState:
        """One segment's 16 kHz mono float32 audio → its encoder state (run once per step)."""
        ...

    def continue_text(
        self,
        state: EncoderState,
        tgt_lang: str,
        prefix: Sequence[int],
        max_new_tokens: int,
        banned_words: Sequence[str] = (),
    ) -> list[int]:
        """Greedy text tokens in ``tgt_lang`` after the forced ``prefix`` (at most ``max_new_tokens``), never any
        of ``banned_words``. Ordinary tokens only: no decoder start, language token, EOS or padding, in or out."""
        ...

    def speak(
        self, state: EncoderState, tgt_lang: str, committed: Sequence[int], new_count: int, speaker_id: int | None
    ) -> np.ndarray:
        """16 kHz float32 speech for the last ``new_count`` of ``committed``, from decoder states that saw the whole
        committed prefix (so the phrase is spoken in context, and nothing is translated twice)."""
        ...

    def starts_word(self, token_id: int) -> bool:
        """Whether the token begins a word (commits are cut at word starts in scripts with spaces)."""
        ...

    def detokenize(self, tokens: Sequence[int]) -> str:
        """Text of ordinary tokens."""
        ...
