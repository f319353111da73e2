"""The watermark key: the secret that seeds every keyed pattern of the built-in mark."""

from __future__ import annotations

import hashlib
import logging

logger = logging.getLogger(__name__)

#: Public key for development and tests only; anyone can forge or detect marks made with it.
DEVELOPMENT_KEY = "parley-development-key-do-not-use-in-production"


class WatermarkKey:
    """The secret that seeds every keyed pattern; hidden from ``repr`` and ``str`` so it never reaches logs."""

    def __init__(self, secret: str | bytes) -> None:
        secret_bytes = secret.encode() if isinstance(secret, str) else bytes(secret)
        if not secret_bytes:
            raise ValueError("the watermark key must not be empty")
        # BLAKE2b takes keys of at most 64 bytes; longer secrets are hashed down to 64 first.
        self._secret = secret_bytes if len(secret_bytes) <= 64 else hashlib.blake2b(secret_bytes).digest()

    @classmethod
    def from_secret(cls, secret: str | None) -> WatermarkKey:
        """The key for ``secret``, or the public development key with a logged warning when it is None."""
        if secret is None:
            logger.warning("no watermark key is set: using the public development key (its marks prove nothing)")
            return cls(DEVELOPMENT_KEY)
        return cls(secret)

    def seed(self, purpose: str) -> int:
        """A 64-bit seed for one keyed pattern; different purposes give independent patterns."""
        digest = hashlib.blake2b(purpose.encode(), key=self._secret, digest_size=8, person=b"parley-wm")
        return int.from_bytes(digest.digest(), "little")

    def __repr__(self) -> str:
        return "WatermarkKey(<hidden>)"

    __str__ = __repr__
