"""The desktop mode's terminal: live captions (the still-changing tail dimmed), how far the translation trails the
speaker, warnings and safety flags; a live status line on a terminal, plain lines when output is redirected.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass
from typing import TextIO

#: Seconds behind the speaker above which the readout says the model is not keeping up.
FALLING_BEHIND_S = 3.0
#: Seconds between status lines when stdout is not a terminal (a terminal gets a live line instead).
PLAIN_STATUS_EVERY_S = 5.0


# ---- terminal view ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Readout:
    """The numbers under the captions."""

    #: Audio captured but not read by the engine yet, in seconds (speaker's clock minus the engine's source time).
    behind_s: float
    #: Audio captured since the start, in seconds.
    heard_s: float
    #: Audio skipped because the model fell ``max_backlog_s`` behind, in seconds.
    skipped_s: float
    #: Translated speech waiting to be played, in seconds.
    speech_queued_s: float = 0.0

    @property
    def falling_behind(self) -> bool:
        return self.behind_s > FALLING_BEHIND_S or self.skipped_s > 0

    def __str__(self) -> str:
        text = f"{self.behind_s:4.1f} s behind · heard {self.heard_s:.0f} s"
        if self.speech_queued_s >= 0.05:
            text += f" · speaking {self.speech_queued_s:.1f} s"
        if self.skipped_s > 0:
            text += f" · skipped {self.skipped_s:.1f} s"
        if self.behind_s > FALLING_BEHIND_S:
            text += " · the model is not keeping up"
        return text


class TerminalView:
    """Captions, readout and safety flags in the terminal.

    On a terminal: finished segments and flags scroll as permanent lines; one live line is redrawn in place with
    the readout, the segment's committed text (normal) and the unstable tail (dim), cut to the terminal width.
    Elsewhere (a pipe, a log file): one plain line per change, prefixed ``committed:``, ``partial:``, ``segment``,
    ``flag:``, ``warning:`` or ``status:``. Thread-safe: the worker and the main thread both write.
    """

    DIM, YELLOW, RESET, CLEAR_LINE = "\033[2m", "\033[33m", "\033[0m", "\r\033[K"

    def __init__(self, stream: TextIO, tty: bool | None = None) -> None:
        self._out = stream
        self._tty = stream.isatty() if tty is None else tty
        self._lock = threading.Lock()
        self._committed = ""  # this segment's committed text
        self._partial = ""
        self._readout: Readout | None = None
        self._drawn = ""  # the live line as last written
        self._last_plain_status = 0.0
        self._was_behind = False

    def say(self, text: str) -> None:
        with self._lock:
            self._line(text)

    def warn(self, text: str) -> None:
        with self._lock:
            self._warn_line(text)

    def flag(self, message: str) -> None:
        """A safety flag or engine notice: kept on screen, never overwritten."""
        with self._lock:
            self._line(f"{self.YELLOW}⚑ {message}{self.RESET}" if self._tty else f"flag: {message}")

    def committed(self, text: str) -> None:
        with self._lock:
            self._committed += text
            if not self._tty:
                self._line(f"committed: {text.strip()}")
            self._redraw()

    def partial(self, text: str) -> None:
        with self._lock:
            self._partial = text
            if not self._tty and text:
                self._line(f"partial: {text}")
            self._redraw()

    def segment(self, start_s: float, end_s: float, text: str, transcript: str | None) -> None:
        """A finished segment: its final text replaces the live line (and its transcript, when there is one)."""
        with self._lock:
            self._committed = self._partial = ""
            label = f"[{start_s:6.1f}–{end_s:6.1f} s]" if self._tty else f"segment {start_s:.2f}-{end_s:.2f} s:"
            self._line(f"{label} {text or '…'}")
            if transcript and transcript != text:
                self._line(f"  source: {transcript}")

    def status(self, readout: Readout) -> None:
        with self._lock:
            self._readout = readout
            if readout.falling_behind != self._was_behind:
                self._was_behind = readout.falling_behind
                if readout.falling_behind:
                    self._warn_line(f"the model is falling behind: {readout}")
            if self._tty:
                self._redraw()
            elif time.monotonic() - self._last_plain_status >= PLAIN_STATUS_EVERY_S:
                self._last_plain_status = time.monotonic()
                self._line(f"status: {readout}")

    def close(self) -> None:
        """End the live line, so what follows starts on a clean line."""
        with self._lock:
            if self._tty:
                self._out.write(self.CLEAR_LINE)
                self._out.flush()
            self._readout = None
            self._drawn = ""

    def _warn_line(self, text: str) -> None:
        self._line(f"{self.YELLOW}{text}{self.RESET}" if self._tty else f"warning: {text}")

    def _line(self, text: str) -> None:
        self._out.write((self.CLEAR_LINE if self._tty else "") + text + "\n")
        self._out.flush()
        self._drawn = ""  # the live line was replaced: draw it again below
        self._redraw()

    def _redraw(self) -> None:
        if not self._tty or self._readout is None:
            return
        prefix = f"{self._readout} │ "
        room = max(10, shutil.get_terminal_size().columns - 1 - len(prefix))
        committed, partial = self._committed.strip(), self._partial.strip()
        if committed and partial:
            partial = " " + partial
        ellipsis = ""
        overflow = len(committed) + len(partial) - room
        if overflow > 0:  # keep the newest words: cut from the left, committed text first
            drop = overflow + 1
            ellipsis = "…"
            cut = min(drop, len(committed))
            committed, partial = committed[cut:], partial[drop - cut :]
        line = f"{prefix}{ellipsis}{committed}{self.DIM}{partial}{self.RESET}"
        if line != self._drawn:  # the worker reports after every audio block (milliseconds apart)
            self._drawn = line
            self._out.write(self.CLEAR_LINE + line)
            self._out.flush()
