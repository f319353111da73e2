"""Streaming resampling whose output does not depend on how the input was chunked.

Live audio arrives in chunks of any size (a browser sends ~0.5 s at 48 kHz, a desktop callback 10 ms). Resampling
each chunk on its own would change samples near every chunk edge, so the same speech would reach the model slightly
differently depending on the network. This resampler computes every output sample from the same input samples and
the same filter taps, in the same order, whatever the chunking: output is bit-identical to resampling all at once
with the same filter.

The filter is the windowed-sinc low-pass that ``scipy.signal.resample_poly`` designs (Kaiser window, β = 5), applied
as a polyphase FIR with a constant delay of half the filter, so output sample m sits at input time m · down / up.
"""

from __future__ import annotations

from math import gcd

import numpy as np
from scipy.signal import firwin


class StreamResampler:
    """Push float32 samples at ``from_hz``; get float32 samples at ``to_hz`` as soon as they are fully determined.

    State is the last few input samples (about 10 periods of the slower rate): bounded, whatever the stream length.
    Call :meth:`flush` at the end of the stream for the last samples (computed as if zeros followed).
    """

    HALF_LENGTH_PERIODS = 10

    def __init__(self, from_hz: int, to_hz: int) -> None:
        if from_hz <= 0 or to_hz <= 0:
            raise ValueError(f"sample rates must be positive, got {from_hz} and {to_hz}")
        g = gcd(from_hz, to_hz)
        self.up, self.down = to_hz // g, from_hz // g
        self.from_hz, self.to_hz = from_hz, to_hz
        self._identity = self.up == self.down == 1
        if self._identity:
            return
        half = self.HALF_LENGTH_PERIODS * max(self.up, self.down)
        taps = firwin(2 * half + 1, 1.0 / max(self.up, self.down), window=("kaiser", 5.0)) * self.up
        self._delay = half  # in up-sampled samples
        # Polyphase layout: phase p uses taps p, p+up, p+2up, ...; padded to the same length for vector gathers.
        per_phase = -(-taps.size // self.up)
        padded = np.zeros(per_phase * self.up)
        padded[: taps.size] = taps
        self._phases = padded.reshape(per_phase, self.up).T.copy()  # (up, per_phase)
        self._per_phase = per_phase
        self._history = np.zeros(0, dtype=np.float64)  # input samples not yet fully consumed
        self._history_start = 0  # absolute index of _history[0]
        self._next_out = 0  # absolute index of the next output sample

    def push(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, dtype=np.float32)
        if self._identity:
            return samples
        self._history = np.concatenate([self._history, samples.astype(np.float64)])
        return self._produce(self._history_start + self._history.size)

    def flush(self) -> np.ndarray:
        """The remaining output, as if the input were followed by silence."""
        if self._identity:
            return np.zeros(0, dtype=np.float32)
        available = self._history_start + self._history.size
        self._history = np.concatenate([self._history, np.zeros(self._per_phase + 1)])
        last_out = -(-available * self.up // self.down)  # outputs up to the input's end time
        return self._produce(self._history_start + self._history.size, limit=last_out)

    def _produce(self, known: int, limit: int | None = None) -> np.ndarray:
        """Outputs whose whole filter support lies within the ``known`` input samples."""
        # Output m needs input up to index floor((m * down + delay) / up).
        last = (known * self.up - self._delay - 1) // self.down  # last output computable (inclusive)
        if limit is not None:
            last = min(last, limit - 1)
        if last < self._next_out:
            return np.zeros(0, dtype=np.float32)
        m = np.arange(self._next_out, last + 1)
        n = m * self.down + self._delay  # positions in the up-sampled signal
        newest, phase = n // self.up, n % self.up  # newest input sample each output reads, and its tap phase
        offsets = np.arange(self._per_phase)
        index = newest[:, None] - offsets[None, :] - self._history_start
        valid = index >= 0  # before the stream started, input is zero
        x = np.where(valid, self._history[np.clip(index, 0, None)], 0.0)
        out = np.einsum("ij,ij->i", x, self._phases[phase])
        self._next_out = last + 1
        # Forget input that no future output reads.
        keep_from = (self._next_out * self.down + self._delay) // self.up - self._per_phase + 1
        drop = max(0, min(keep_from - self._history_start, self._history.size))
        self._history = self._history[drop:]
        self._history_start += drop
        return out.astype(np.float32)
