"""The engine: speech and text in, translated text and speech out, with SeamlessM4T v2 — loading, audio input, VAD,
the translator, the streaming session and its parts, and the decodes a judge asks for. It imports no other package
of Parley."""
