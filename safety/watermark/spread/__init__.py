"""The built-in mark's method: keyed spread spectrum in the log energy of time-frequency tiles (16 ms x 125 Hz) in the
band that survives telephone channels and codecs (625-3375 Hz), written from the published literature:

* chips are ±1 per tile, modulated by the coded bit of the symbol that owns the tile, and detected by correlating
  de-trended log energies with the key's chips (Kirovski & Malvar, "Spread-spectrum watermarking of audio signals",
  IEEE Trans. Signal Process. 51(4), 2003: chips in log magnitude, the host's envelope removed before correlating).
  The feature is a tile's log energy minus the mean of its two frequency neighbours, clipped to ±6 dB: it ignores
  gain, equalisation slopes and speech onsets. A symbol owns 2-3 adjacent bands over eight adjacent columns
  (128 ms) with chips in a checkerboard: alternating along frequency, which that feature sees twice as strongly as
  random chips, and along time, so that the host's own spectral fine structure (voice harmonics, which for
  200-300 Hz voices alternate from one 125 Hz band to the next), nearly unchanged from one 16 ms column to the
  next, cancels out of the correlation. Short frames (16 ms, 62.5 Hz bins) blur those harmonics in the first
  place (the payload then survives white noise and 2-second excerpts far more often for high voices). The
  detector weights each tile by the fraction of its power above the band's noise floor (1 - noise / power), so
  tiles that added noise has buried count little;
* informed embedding: the embedder knows the host, so each symbol only adds what is missing to reach a target
  correlation instead of fighting the speech ("improved spread spectrum", Malvar & Florêncio, IEEE Trans. Signal
  Process. 51(4), 2003), measured in closed loop through resynthesis. The missing part goes preferably to tiles
  quieter than their neighbours, which mask it and cost the least energy per dB; every change is multiplicative,
  so digital silence stays silent. Each 128 ms segment's added energy is capped 23 dB below its own plus what
  earlier segments left unused (at most 12 dB more), so no prefix of the stream has an SNR below 23 dB. Over that
  budget, the symbols whose changes cost the most energy (where the host fights the mark hardest) are given up
  to the error-correcting code rather than every change scaled down, which would leave many symbols half way;
* a 1.92-second period carries 42 pilot symbols plus the 32-bit payload with a CRC-16 under a rate-1/2
  convolutional code with soft Viterbi decoding (:mod:`.ecc`), so any 2-second excerpt holds one
  whole period. The detector searches the time offset (64-sample steps) and the period's phase by the pilots,
  decodes the 4 best placements and keeps one whose CRC passes (searching a list of the 16 likeliest decodes of
  each when the pilots suggest a mark): the score is then a t-statistic over every symbol instance, each clipped
  so that symbols the host overwhelmed cannot dominate;
* marked stretches are the runs of symbol instances that agree with the decoded pattern by a high summed
  log-likelihood ratio, found to 128 ms; every 0.5-second window's score is reported for display.

One job per module: :mod:`.options` (every setting), :mod:`.layout` (keyed pattern, tile analysis),
:mod:`.embed` (streaming embedder), :mod:`.detect` (search and decoding), :mod:`.instances` (per-symbol
correlations), :mod:`.localise` (marked stretches), :mod:`.ecc` (CRC and convolutional code).
"""
