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


def decode_payload(soft: np.ndarray) -> tuple[int | None, np.ndarray]:
    """Soft values (positive means bit 1, magnitude = reliability) to the payload, or None when the CRC fails.

    Also returns the ±1 codeword re-encoded from the decoded bits, which tells the detector what every coded
    symbol should look like (used for scoring and localisation).
    """
    return decode_payloads(soft[None])[0]


def decode_payloads(soft: np.ndarray) -> list[tuple[int | None, np.ndarray]]:
    """:func:`decode_payload` for a batch of candidates (candidates, CODED_BITS), decoded together for speed."""
    if soft.ndim != 2 or soft.shape[1] != CODED_BITS:
        raise ValueError(f"expected (candidates, {CODED_BITS}) soft values, got shape {soft.shape}")
    results: list[tuple[int | None, np.ndarray]] = []
    for info in _viterbi(soft):
        codeword = 2.0 * _convolve(info) - 1.0
        bits = info[:PAYLOAD_BITS]
        valid = np.array_equal(crc(bits), info[PAYLOAD_BITS:INFO_BITS])
        results.append((bits_to_int(bits) if valid else None, codeword))
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


def _viterbi(soft: np.ndarray) -> np.ndarray:
    """Maximum-likelihood input bits (candidates, steps) for soft values under Gaussian noise (correlation metric)."""
    predecessors, outputs = _trellis()
    batch = soft.shape[0]
    steps = soft.shape[1] // len(GENERATORS)
    pairs = soft.reshape(batch, steps, len(GENERATORS))
    branch = np.einsum("spg,btg->tbsp", outputs, pairs)  # (steps, batch, state, predecessor)
    metric = np.full((batch, _STATES), -np.inf)
    metric[:, 0] = 0.0
    choices = np.empty((steps, batch, _STATES), dtype=np.int64)
    first, second = predecessors[:, 0], predecessors[:, 1]
    for step in range(steps):
        via_first = metric[:, first] + branch[step, :, :, 0]
        via_second = metric[:, second] + branch[step, :, :, 1]
        choice = via_second > via_first
        choices[step] = choice
        metric = np.where(choice, via_second, via_first)
    state = np.zeros(batch, dtype=np.int64)  # the zero tail brings the encoder back to state 0
    info = np.empty((batch, steps), dtype=np.int8)
    rows = np.arange(batch)
    for step in range(steps - 1, -1, -1):
        info[:, step] = state & 1
        state = predecessors[state, choices[step, rows, state]]
    return info
