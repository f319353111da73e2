"""Error control for the watermark payload: CRC-16 to reject wrong decodes, a convolutional code with soft decoding.

The payload is 32 bits. Sixteen CRC bits (CRC-16/CCITT polynomial x^16 + x^12 + x^5 + 1, initial value 0) let the
detector tell a real payload from the best guess the decoder makes out of noise, about 1 in 65,536 guesses passing,
so it can afford to decode many candidate alignments; the 48 bits are protected by the rate-1/2,
constraint-length-7 convolutional code used since Voyager (generators 133 and 171 octal) with six zero tail bits,
decoded by the Viterbi algorithm on soft values (Viterbi, IEEE Trans. Inf. Theory 13(2), 1967), which gains about
2 dB over deciding each coded bit first.
"""

from __future__ import annotations

from functools import cache

import numpy as np

PAYLOAD_BITS = 32
CRC_BITS = 16
CRC_POLYNOMIAL = 0x1021
CONSTRAINT_LENGTH = 7
GENERATORS = (0o133, 0o171)
TAIL_BITS = CONSTRAINT_LENGTH - 1
INFO_BITS = PAYLOAD_BITS + CRC_BITS
#: Coded bits per payload: (payload + CRC + tail) × 2 for the rate-1/2 code.
CODED_BITS = (INFO_BITS + TAIL_BITS) * len(GENERATORS)

_STATES = 1 << (CONSTRAINT_LENGTH - 1)


def crc(bits: np.ndarray) -> np.ndarray:
    """CRC of a bit vector (most significant bit first), as CRC_BITS bits."""
    top, mask = 1 << (CRC_BITS - 1), (1 << CRC_BITS) - 1
    register = 0
    for bit in bits:
        register ^= int(bit) << (CRC_BITS - 1)
        register = ((register << 1) ^ CRC_POLYNOMIAL if register & top else register << 1) & mask
    return int_to_bits(register, CRC_BITS)


def int_to_bits(value: int, width: int) -> np.ndarray:
    """Unsigned integer to ``width`` bits, most significant first."""
    return np.array([(value >> (width - 1 - i)) & 1 for i in range(width)], dtype=np.int8)


def bits_to_int(bits: np.ndarray) -> int:
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value


def encode_payload(payload: int) -> np.ndarray:
    """32-bit payload to the ±1 codeword (CODED_BITS long) that the watermark carries."""
    if not 0 <= payload < 1 << PAYLOAD_BITS:
        raise ValueError(f"payload must fit in {PAYLOAD_BITS} unsigned bits, got {payload}")
    bits = int_to_bits(payload, PAYLOAD_BITS)
    info = np.concatenate([bits, crc(bits), np.zeros(TAIL_BITS, dtype=np.int8)])
    return 2.0 * _convolve(info) - 1.0


def decode_payload(soft: np.ndarray, list_size: int = 1) -> tuple[int | None, np.ndarray]:
    """Soft values (positive means bit 1, magnitude = reliability) to the payload, or None when the CRC fails.

    Also returns the ±1 codeword re-encoded from the decoded bits, which tells the detector what every coded
    symbol should look like (used for scoring and localisation). ``list_size`` > 1 tries that many of the most
    likely inputs in turn and keeps the first whose CRC passes (see :func:`decode_payloads`).
    """
    return decode_payloads(soft[None], list_size)[0]


def decode_payloads(soft: np.ndarray, list_size: int = 1) -> list[tuple[int | None, np.ndarray]]:
    """:func:`decode_payload` for a batch of candidates (candidates, CODED_BITS), decoded together for speed.

    CRC-aided list decoding: the list Viterbi algorithm yields the ``list_size`` most likely inputs, and the CRC
    picks the first valid one, which reads payloads at lower signal-to-noise ratios than the single best path
    (Seshadri & Sundberg, "List Viterbi decoding algorithms with applications", IEEE Trans. Commun. 42(234), 1994).
    Each path tried is one more chance for noise to pass the CRC (2**-CRC_BITS each), so callers use a list only
    where the mark is already known to be present. When no path passes, the best path's codeword is returned.
    """
    if soft.ndim != 2 or soft.shape[1] != CODED_BITS:
        raise ValueError(f"expected (candidates, {CODED_BITS}) soft values, got shape {soft.shape}")
    if list_size < 1:
        raise ValueError("list_size must be >= 1")
    results: list[tuple[int | None, np.ndarray]] = []
    for paths in _list_viterbi(soft, list_size):
        chosen, payload = paths[0], None
        for info in paths:
            bits = info[:PAYLOAD_BITS]
            if np.array_equal(crc(bits), info[PAYLOAD_BITS:INFO_BITS]):
                chosen, payload = info, bits_to_int(bits)
                break
        results.append((payload, 2.0 * _convolve(chosen) - 1.0))
    return results


def _convolve(info: np.ndarray) -> np.ndarray:
    """Rate-1/2 convolutional encoding of 0/1 bits; the output interleaves the two generator streams.

    Generator bit k taps the input k steps back (bit 0 is the current input), as in a shift register.
    """
    bits = np.asarray(info, dtype=np.int64)
    out = np.empty(bits.size * len(GENERATORS), dtype=np.int8)
    for j, generator in enumerate(GENERATORS):
        taps = (generator >> np.arange(CONSTRAINT_LENGTH)) & 1
        out[j :: len(GENERATORS)] = np.convolve(bits, taps)[: bits.size] & 1
    return out


@cache
def _trellis() -> tuple[np.ndarray, np.ndarray]:
    """For each next state and each of its two predecessors: the predecessor state and the branch's ±1 outputs.

    State = the last six input bits (newest in the least significant bit); input bit u leads from state s to
    ((s << 1) | u) mod 64, so next state n has the input bit n & 1 and predecessors n >> 1 and (n >> 1) | 32.
    """
    next_states = np.arange(_STATES)
    predecessors = np.stack([next_states >> 1, (next_states >> 1) | (_STATES >> 1)], axis=1)
    registers = (predecessors << 1) | (next_states[:, None] & 1)
    outputs = np.stack(
        [np.vectorize(lambda r, g=g: bin(int(r) & g).count("1") & 1)(registers) for g in GENERATORS], axis=-1
    )
    return predecessors, 2.0 * outputs - 1.0


def _list_viterbi(soft: np.ndarray, size: int) -> list[np.ndarray]:
    """The ``size`` most likely input sequences of each candidate under Gaussian noise (correlation metric).

    Parallel list Viterbi: every state keeps its ``size`` best partial paths, ranked; size 1 is the Viterbi
    algorithm. Returns, per candidate, the paths ending in state 0 (the zero tail), best first, as (paths, steps)
    0/1 arrays; paths that cannot exist (fewer than ``size`` at the end) are left out.
    """
    predecessors, outputs = _trellis()
    batch = soft.shape[0]
    steps = soft.shape[1] // len(GENERATORS)
    pairs = soft.reshape(batch, steps, len(GENERATORS))
    branch = np.einsum("spg,btg->tbsp", outputs, pairs)  # (steps, batch, state, predecessor)
    metric = np.full((batch, _STATES, size), -np.inf)
    metric[:, 0, 0] = 0.0
    # For each step, state and rank: which of the 2 x size extensions (predecessor, its rank) was kept.
    choices = np.empty((steps, batch, _STATES, size), dtype=np.int64)
    for step in range(steps):
        extended = np.concatenate(
            [
                metric[:, predecessors[:, 0]] + branch[step, :, :, :1],
                metric[:, predecessors[:, 1]] + branch[step, :, :, 1:],
            ],
            axis=-1,
        )  # (batch, state, 2 x size)
        order = np.argsort(-extended, axis=-1, kind="stable")[..., :size]
        choices[step] = order
        metric = np.take_along_axis(extended, order, axis=-1)
    rows = np.arange(batch)[:, None]
    state = np.zeros((batch, size), dtype=np.int64)
    rank = np.broadcast_to(np.arange(size), (batch, size)).copy()
    info = np.empty((batch, size, steps), dtype=np.int8)
    for step in range(steps - 1, -1, -1):
        info[:, :, step] = state & 1
        choice = choices[step, rows, state, rank]
        state = predecessors[state, choice // size]
        rank = choice % size
    valid = np.isfinite(metric[:, 0])
    return [info[b][valid[b]] for b in range(batch)]
