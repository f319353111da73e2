"""Soak: mixed live, file and text visitors at a fixed rate against one server; memory and disk must stay flat.

The server is ``python app.py --model tiny`` in its own process with its own ``TMPDIR`` (so every upload, live chunk
and output it keeps is counted) and a short retention. Three client threads drive it from outside over Gradio's
wire protocol (:mod:`tests.wire`), each a new visitor per request, as browsers do: a live stream (0.5 s chunks of
48 kHz speech, then Stop and its downloads), a file (speech → text) and a text request, each at its own fixed
interval. Every few seconds the server's RSS and its temp files are sampled.

    .venv/bin/python bench/soak.py --minutes 10         # prints RSS start/end, slope, temp files, errors

What must hold (tests/test_soak.py checks it on a short run): the slope of RSS (anonymous memory) over the second
half ≤ 1 MB/min, judged on its floor in each 30 s window (see FLOOR_WINDOW_S); no temp file older than the
retention rule allows (retention, plus one cleanup period of Gradio's cache, plus one housekeeping round); zero
errors.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from bench.streaming import SENTENCES, browser_chunks, speak
from tests.conftest import TEST_CACHE
from tests.wire import GradioWire, wav_bytes

TEXT_ONLY = "Text only"
#: Seconds between two requests of each kind (one thread per kind).
INTERVALS_S = {"live": 6.0, "file": 8.0, "text": 3.0}
SAMPLE_EVERY_S = 1.0
#: RSS is judged by its floor in windows of this length: the lowest sample, between two requests' transient buffers
#: and after housekeeping's heap trim (every 5 s). A leak raises the floor; a request in flight only a peak. One
#: sample per minute's worth of noise made a short run's slope swing by several MB/min either way; 10 s windows,
#: shorter than two file requests (8 s apart) plus a live stream, often held no quiet moment: two flat 5-minute
#: runs gave +0.0 and +1.0 MB/min on 10 s floors, +0.6 and +0.3 on 30 s floors.
FLOOR_WINDOW_S = 30.0
#: Sessions the server keeps: every request here is a new visitor (~0.1 MB of session state each), so the bound is
#: reached within the warm-up and the first minute; then memory must be flat.
MAX_SESSIONS = 40
#: Housekeeping's round (ui/app.py) and slack for a busy machine, in seconds.
HOUSEKEEPING_S, SLACK_S = 5.0, 10.0


@dataclass
class Sample:
    at_s: float
    rss_mb: float  # anonymous resident memory (see rss_mb())
    vm_rss_mb: float  # all of it, file pages included
    temp_files: int
    stale_files: int  # older than the retention rule allows


@dataclass
class SoakReport:
    minutes: float
    retention_s: float
    samples: list[Sample] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    stale_examples: list[str] = field(default_factory=list)  # the first files seen past the rule, if any

    def floors(self) -> list[tuple[float, float]]:
        """(window start in minutes, lowest anonymous RSS in it) for each whole :data:`FLOOR_WINDOW_S` window."""
        windows: dict[int, float] = {}
        for sample in self.samples:
            index = int(sample.at_s // FLOOR_WINDOW_S)
            windows[index] = min(windows.get(index, sample.rss_mb), sample.rss_mb)
        whole = int(self.samples[-1].at_s // FLOOR_WINDOW_S)  # the last window may be cut short
        return [(i * FLOOR_WINDOW_S / 60, rss) for i, rss in sorted(windows.items()) if i < whole]

    @property
    def slope_mb_per_min(self) -> float:
        """The floors' trend over the second half of the run (Theil–Sen: the median of the slopes between every
        two floors, so one odd window does not tip it)."""
        floors = self.floors()
        half = [(t, rss) for t, rss in floors if t >= floors[-1][0] / 2]
        return float(stats.theilslopes([rss for _, rss in half], [t for t, _ in half])[0])

    @property
    def sample_slope_mb_per_min(self) -> float:
        """Least-squares slope of every sample over the second half, peaks included (for comparison)."""
        half = [s for s in self.samples if s.at_s >= self.samples[-1].at_s / 2]
        return float(np.polyfit([s.at_s / 60 for s in half], [s.rss_mb for s in half], 1)[0])

    @property
    def stale_files(self) -> int:
        return max(s.stale_files for s in self.samples)

    def lines(self) -> list[str]:
        first, last = self.samples[0], self.samples[-1]
        files = [s.temp_files for s in self.samples]
        return [
            f"soak: {self.minutes:g} min, retention {self.retention_s:g} s, requests {self.requests}",
            f"RSS (anonymous) start {first.rss_mb:.0f} MB (after warm-up), end {last.rss_mb:.0f} MB, "
            f"peak {max(s.rss_mb for s in self.samples):.0f} MB; whole RSS {first.vm_rss_mb:.0f} → "
            f"{last.vm_rss_mb:.0f} MB",
            "RSS each minute: " + " ".join(f"{s.rss_mb:.0f}" for s in self.samples[:: int(60 / SAMPLE_EVERY_S)]),
            f"RSS floor each {FLOOR_WINDOW_S:.0f} s window: " + " ".join(f"{rss:.0f}" for _, rss in self.floors()),
            f"RSS floor slope over the second half: {self.slope_mb_per_min:+.2f} MB/min (every sample, least "
            f"squares: {self.sample_slope_mb_per_min:+.2f} MB/min)",
            f"temp files: end {files[-1]}, most {max(files)}; older than the retention rule: {self.stale_files}"
            + (f" (e.g. {', '.join(self.stale_examples)})" if self.stale_examples else ""),
            f"errors: {len(self.errors)}" + (f" (first: {self.errors[0]})" if self.errors else ""),
        ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int, field: str = "RssAnon") -> float:
    """The process's resident memory in MB: by default its anonymous part (heap, tensors), the one a leak grows.
    The whole (``VmRSS``) also counts file pages the kernel may drop and read back whenever the machine is short of
    memory: on a shared machine it fell 960 → 630 MB in a minute of the same traffic."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


def temp_files(folder: Path, older_than: float) -> tuple[int, list[Path]]:
    """How many files the server keeps under ``folder`` (Gradio's cache and Parley's outputs; not what libraries
    write once at import), and those last changed before ``older_than`` (epoch seconds)."""
    total, stale = 0, []
    kept = [folder / "gradio", *folder.glob("parley-*")]
    for root, _, names in (entry for top in kept for entry in os.walk(top)):
        for name in names:
            try:
                changed = (Path(root) / name).lstat().st_ctime
            except FileNotFoundError:  # deleted while we looked
                continue
            total += 1
            if changed < older_than:
                stale.append((Path(root) / name).relative_to(folder))
    return total, stale


class Visitors:
    """The three kinds of visitor, each a new session per request; failures are collected, never raised."""

    def __init__(self, url: str, speech: np.ndarray, report: SoakReport) -> None:
        self.url, self.report = url, report
        self.file_wav = wav_bytes(speech, 16_000)
        self.chunks = [wav_bytes(c, 48_000) for c in browser_chunks(speech)]
        self.lock = threading.Lock()

    def live(self, wire: GradioWire) -> str | None:
        settings = ["eng", "spa", TEXT_ONLY, "balanced", False, None]
        chunks = [[wire.file(wire.upload(c, "audio.wav")), *settings] for c in self.chunks]
        reply = wire.stream("live_chunk", chunks, pause_s=0.25)
        if reply.failed:
            return f"live: {reply.error}"
        stop = wire.call("live_stop", [None])
        return None if stop.ok and stop.data[-1] else f"live stop: {stop.error or 'no downloads'}"

    def file(self, wire: GradioWire) -> str | None:
        reply = wire.call("translate_file", [wire.file(wire.upload(self.file_wav)), "eng", "spa", TEXT_ONLY, False])
        return None if reply.ok else f"file: {reply.error}"

    def text(self, wire: GradioWire) -> str | None:
        reply = wire.call("translate_text", ["Good morning, everyone.", "eng", "spa", TEXT_ONLY])
        return None if reply.ok and reply.data[0] else f"text: {reply.error}"

    def loop(self, kind: str, until: float) -> None:
        visit = getattr(self, kind)
        next_at = time.monotonic()
        while next_at < until:
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += INTERVALS_S[kind]  # a fixed rate: a slow answer does not slow the next request down
            wire = GradioWire(self.url)
            try:
                error = visit(wire)
            except Exception as e:  # a refused connection, a timeout: counted, the soak goes on
                error = f"{kind}: {type(e).__name__}: {e}"
            finally:
                wire.close()
            with self.lock:
                self.report.requests[kind] = self.report.requests.get(kind, 0) + 1
                if error:
                    self.report.errors.append(error)


def start_server(port: int, tmp: Path, retention_s: float) -> subprocess.Popen:
    repo = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "app.py", "--model", "tiny", "--cache-dir", str(TEST_CACHE), "--device", "cpu",
           "--port", str(port), "--retention-s", str(retention_s), "--idle-timeout-s", "20",
           "--max-sessions", str(MAX_SESSIONS)]  # fmt: skip
    env = {**os.environ, "TMPDIR": str(tmp), "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("GRADIO_TEMP_DIR", None)
    log = open(tmp.parent / "server.log", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(cmd, cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(url: str, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            wire = GradioWire(url)
            try:
                if wire.call("translate_text", ["Hello.", "eng", "spa", TEXT_ONLY]).ok:
                    return
            finally:
                wire.close()
        except Exception:  # not listening yet
            pass
        time.sleep(1.0)
    raise RuntimeError("the server did not become ready")


def run(minutes: float, retention_s: float = 20.0, warmup_s: float = 20.0) -> SoakReport:
    report = SoakReport(minutes, retention_s)
    # The rule: Parley deletes outputs past retention each housekeeping round; Gradio deletes its cache every
    # min(600 s, retention) once past retention.
    allowed_s = retention_s + min(600.0, retention_s) + HOUSEKEEPING_S + SLACK_S
    with tempfile.TemporaryDirectory(prefix="parley-soak-") as folder:
        tmp = Path(folder) / "tmp"
        tmp.mkdir()
        speech = np.concatenate([speak(SENTENCES[0], Path(folder), 0), np.zeros(8_000, np.float32)])
        port = free_port()
        server = start_server(port, tmp, retention_s)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url)
            visitors = Visitors(url, speech, report)
            started = time.monotonic()
            until = started + warmup_s + minutes * 60
            threads = [threading.Thread(target=visitors.loop, args=(k, until), daemon=True) for k in INTERVALS_S]
            for thread in threads:
                thread.start()
            time.sleep(warmup_s)  # first requests load lists, voices and caches: not a leak
            while time.monotonic() < until:
                total, stale = temp_files(tmp, time.time() - allowed_s)
                report.samples.append(Sample(time.monotonic() - started - warmup_s, rss_mb(server.pid),
                                             rss_mb(server.pid, "VmRSS"), total, len(stale)))  # fmt: skip
                report.stale_examples = report.stale_examples or [str(p) for p in stale[:3]]
                time.sleep(SAMPLE_EVERY_S)
            for thread in threads:
                thread.join(120)
            if server.poll() is not None:
                report.errors.append(f"the server exited with status {server.returncode}")
        finally:
            server.terminate()
            server.wait(30)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to run after the warm-up")
    parser.add_argument("--retention-s", type=float, default=20.0, help="the server's retention (short, to see it)")
    args = parser.parse_args()
    report = run(args.minutes, args.retention_s)
    print("\n".join(report.lines()))
    return 0 if not report.errors else 1


if __name__ == "__main__":
    sys.exit(main())
