"""Safety: judging translations (added toxicity, gender bias) and watermarking synthetic speech. It never runs the
translation model; of the engine it uses only audio I/O and constants."""
