"""The five things SeamlessM4T v2 does, as one enum (kept free of heavy imports so the CLI starts fast)."""

from enum import Enum


class Task(str, Enum):
    S2ST = "s2st"  # speech → translated speech (and its text)
    S2TT = "s2tt"  # speech → translated text
    T2ST = "t2st"  # text → translated speech (and its text)
    T2TT = "t2tt"  # text → translated text
    ASR = "asr"  # speech → text in the language spoken

    @property
    def speech_input(self) -> bool:
        return self in (Task.S2ST, Task.S2TT, Task.ASR)

    @property
    def speech_output(self) -> bool:
        return self in (Task.S2ST, Task.T2ST)
