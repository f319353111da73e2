"""The Ray Serve model pool (``--backend ray``): two CPU replicas of the tiny model, started once for the module.

Each test compares what streams and uploads get through the pool with what the local backend gives for the same
audio (greedy, fp32, one torch thread as in a replica), so any lost, repeated or reordered text shows. When Ray
cannot start, the module fails and says why (no skip).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from websockets.exceptions import InvalidStatus

from cluster.metrics import per_replica
from cluster.processes import Process, end, process_table, subtree, survivors
from compose.pipeline import Pipeline, build_pipeline
from compose.settings import ClusterSettings, Settings, WebSettings
from engine.audio import SAMPLE_RATE_HZ, load_audio
from engine.stream_events import CommittedText, Notice, SpeechChunk
from tests import test_desktop
from tests.conftest import REPO, SENTENCES, TEST_CACHE, espeak, recording
from tests.test_desktop import MIC_SINK, desktop, wait_for
from tests.test_websocket import send

pytestmark = pytest.mark.timeout(300)

APP = "parley-test"
#: Ports of this module (the project's Ray range): metrics of the local head, the two front ends.
METRICS_PORT, FRONT_A_PORT, FRONT_B_PORT = 8276, 7961, 7962
#: The one-command run's own head (dashboard, metrics) and page.
RUN_DASHBOARD_PORT, RUN_METRICS_PORT, RUN_PORT = 8277, 8278, 7963
STOPPED_WITHIN_S = 30.0
CHUNK_S = 0.25
TARGETS = ("spa", "fra", "deu")
REPLACED_TIMEOUT_S = 90.0

#: The desktop tests' PulseAudio daemon (its microphone sink) and their English speech, as fixtures here too.
pulse, desktop_speech = test_desktop.pulse, test_desktop.speech


@pytest.fixture(scope="module")
def utterances(speech_dir) -> list[np.ndarray]:
    """Six live streams' audio: one sentence each (2-4 s), with silence around it."""
    paths = [espeak(text, speech_dir / f"ray{i}.wav", voice=voice) for i, (voice, text) in enumerate(SENTENCES[:6])]
    return [recording([load_audio(p)], [0.8])[0] for p in paths]


@pytest.fixture(scope="module")
def uploads(utterances) -> list[np.ndarray]:
    """Two recordings of two utterances with a pause between them (two segments each)."""
    return [recording([utterances[i], utterances[i + 1]], [1.0, 0.5])[0] for i in (0, 2)]


@pytest.fixture(scope="module")
def ray_settings(tiny_options) -> Settings:
    cluster = ClusterSettings(
        backend="ray", ray_app_name=APP, replicas=2, replica_num_cpus=0.5, ray_dashboard_port=0,
        ray_metrics_port=METRICS_PORT,
    )  # fmt: skip
    return Settings(engine=tiny_options, cluster=cluster)


@pytest.fixture(scope="module")
def pool_pipeline(ray_settings, loaded) -> Pipeline:
    """This process as a front end of the pool; the local head and both replicas are started here."""
    from cluster.head import PoolUnavailableError

    try:
        pipeline = build_pipeline(ray_settings, loaded)
    except PoolUnavailableError as e:
        pytest.fail(f"the Ray tests cannot run: {e}")
    yield pipeline
    pipeline.pool.close()


def one_thread(fn):
    """Run ``fn`` with one torch thread, as a replica with num_cpus < 1 does (same float reductions)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn()
    finally:
        torch.set_num_threads(threads)


def live(pipeline: Pipeline, audio: np.ndarray, tgt: str, task: str, pause_s: float = 0.0) -> list:
    """A live stream fed in 0.25 s chunks (``pause_s`` between them); every event it gave."""
    session = pipeline.stream(tgt, task, preset="low", src_lang="eng")
    step, events = int(CHUNK_S * SAMPLE_RATE_HZ), []
    for i in range(0, audio.size, step):
        events += session.push(audio[i : i + step], SAMPLE_RATE_HZ)
        time.sleep(pause_s)
    return events + session.finish()


def committed(events: list) -> list[str]:
    return [e.text for e in events if isinstance(e, CommittedText)]


def on_threads(jobs: list) -> list:
    results: list = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = jobs[i]()
        except BaseException as e:  # re-raised in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def stream_jobs(pipeline: Pipeline, audios: list[np.ndarray], pause_s: float = 0.0) -> list:
    tasks = ("s2st", "s2tt")
    return [lambda i=i, a=a: live(pipeline, a, TARGETS[i % 3], tasks[i % 2], pause_s) for i, a in enumerate(audios)]


def wait_for_metrics(url: str, done: callable, timeout_s: float = 30.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout_s
    while True:
        calls = per_replica(url)
        if done(calls) or time.monotonic() > deadline:
            return calls
        time.sleep(1.0)


@pytest.fixture(scope="module")
def local_streams(pipeline, utterances) -> list[list]:
    """What the local backend gives for the six streams."""
    return one_thread(lambda: [job() for job in stream_jobs(pipeline, utterances)])


def test_streams_and_uploads_through_the_pool_equal_the_local_backend(
    pool_pipeline, pipeline, utterances, uploads, local_streams
):
    """Six live streams and two uploads at once, spread over both replicas: the same text as the local backend."""
    jobs = stream_jobs(pool_pipeline, utterances)
    jobs += [lambda a=a: pool_pipeline.translate_recording(a, "s2tt", "spa", "eng") for a in uploads]
    results = on_threads(jobs)
    expected = local_streams
    expected_files = one_thread(lambda: [pipeline.translate_recording(a, "s2tt", "spa", "eng") for a in uploads])

    for got, want in zip(results[:6], expected, strict=True):
        assert committed(want) and committed(got) == committed(want)
        speech = [e.audio.size for e in got if isinstance(e, SpeechChunk)]
        assert speech == [e.audio.size for e in want if isinstance(e, SpeechChunk)]
    assert any(isinstance(e, SpeechChunk) for e in results[0])  # the s2st streams were spoken through the pool
    for got, want in zip(results[6:], expected_files, strict=True):
        assert len(want.segments) == 2
        assert [(s.text, s.transcript) for s in got.segments] == [(s.text, s.transcript) for s in want.segments]

    seen = pool_pipeline.pool.replicas()
    assert len(seen) == 2 and all(r.calls > 0 for r in seen), seen
    metrics = wait_for_metrics(pool_pipeline.pool.head.metrics_url, lambda c: len([v for v in c.values() if v]) >= 2)
    assert {r.replica for r in seen} <= set(metrics) and all(metrics[r.replica] > 0 for r in seen), metrics


@pytest.mark.parametrize("task", ["t2tt", "t2st"])
def test_a_text_request_through_the_pool_equals_the_local_one(pool_pipeline, pipeline, task):
    [(got, _)] = pool_pipeline.translate_texts(["Good morning, everyone."], task, "fra", "eng")
    [(want, _)] = one_thread(lambda: pipeline.translate_texts(["Good morning, everyone."], task, "fra", "eng"))
    assert got.text and got.token_ids == want.token_ids
    if task == "t2st":  # the speech made after the text (the page shows the text first), on a replica
        assert got.waveform.size and got.waveform.shape == want.waveform.shape
        np.testing.assert_allclose(got.waveform, want.waveform, atol=1e-4)


def test_a_state_missing_on_a_replica_is_sent_again(pool_pipeline, utterances):
    """A call naming an encoder state no replica holds is answered after the state is carried (any replica)."""
    from cluster.pool import PendingState

    pool = pool_pipeline.pool
    session = pool.session("miss")
    state = session.encode(utterances[0][: 2 * SAMPLE_RATE_HZ])
    tokens = session.continue_text(state, "spa", [], 8)
    unknown = PendingState(state.audio, dataclasses.replace(state.wire, ref="never-cached"))
    resends = pool.resends
    assert session.continue_text(unknown, "spa", [], 8) == tokens and tokens
    assert pool.resends == resends + 1


@pytest.fixture(scope="module")
def front_ends(pool_pipeline, ray_settings, tmp_path_factory):
    """Two web front ends joining the pool by its address: one in this process, one in a process of its own."""
    from ui.app import build_app, launch

    address = pool_pipeline.pool.head.address
    cluster = dataclasses.replace(ray_settings.cluster, ray_address=address)
    log = tmp_path_factory.mktemp("front") / "front_b.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    args = ["--model", "tiny", "--device", "cpu", "--cache-dir", str(TEST_CACHE), "--backend", "ray",
            "--ray-address", address, "--ray-app-name", APP, "--port", str(FRONT_B_PORT)]  # fmt: skip
    with log.open("w") as out:
        other = subprocess.Popen([sys.executable, "app.py", *args], cwd=REPO, env=env, stdout=out, stderr=out)
    try:
        web = WebSettings(port=FRONT_A_PORT)
        app, demo = build_app(dataclasses.replace(ray_settings, cluster=cluster, web=web))
        assert app.runtime.wait(120).ready, app.runtime.status.message
        launch(app, demo, block=False)
        wait_for_port(FRONT_B_PORT, other, log)
        yield app, other, log
    finally:
        other.send_signal(signal.SIGINT)
        try:
            other.wait(30)
        except subprocess.TimeoutExpired:
            # Seen once in a full clean-clone run on 2 cores: the joined front end had not exited 30 s after Ctrl-C
            # (it lost the head's GCS meanwhile); not reproduced alone. Its stop is not what this module tests (the
            # one-command run's is): end it, and keep its log's tail in the output.
            print(f"front end B still running 30 s after SIGINT; its log ends:\n{log.read_text()[-2000:]}")
            end(started_by(other.pid), grace_s=0.0)
            other.wait(10)


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout_s: float = 150.0) -> None:
    """Until the front end's WebSocket answers a stream with "ready" (the page is up before the model and pool)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the second front end exited: {log.read_text()[-2000:]}"
        try:
            probe = asyncio.run(send(f"ws://127.0.0.1:{port}/ws", np.zeros(SAMPLE_RATE_HZ // 2, np.float32)))
            if probe.messages and probe.messages[0]["type"] == "ready":
                return
        except (OSError, InvalidStatus):  # not listening yet, or listening before /ws is mounted (HTTP 403)
            pass
        time.sleep(1.0)
    pytest.fail(f"the second front end did not start in {timeout_s:.0f} s: {log.read_text()[-2000:]}")


def test_two_front_ends_share_the_pool(front_ends, pool_pipeline, pipeline, utterances):
    """Both web servers stream through the same two replicas (the Serve application is deployed once)."""
    from ray import serve

    app, _, log = front_ends
    before = per_replica(pool_pipeline.pool.head.metrics_url)
    got = on_threads([lambda p=p: asyncio.run(send(f"ws://127.0.0.1:{p}/ws", utterances[1])) for p in
                      (FRONT_A_PORT, FRONT_B_PORT)])  # fmt: skip
    session = pipeline.stream("spa", "s2tt", src_lang="eng")
    want = one_thread(lambda: "".join(committed(send_like_client(session, utterances[1]))))
    assert want and [g.committed for g in got] == [want, want] and not any(g.errors for g in got)
    assert "(joined)" in log.read_text()
    status = serve.status().applications[APP].deployments["ModelReplica"]
    assert status.replica_states.get("RUNNING") == 2
    front_a = app.runtime.pipeline().pool.replicas()
    assert front_a and {r.replica for r in front_a} <= {r.replica for r in pool_pipeline.pool.replicas()}
    # The second front end's calls are counted by the same replicas (front end A's count alone is not enough).
    a_calls = sum(r.calls for r in front_a)
    after = wait_for_metrics(pool_pipeline.pool.head.metrics_url,
                             lambda c: sum(c.values()) - sum(before.values()) > a_calls)  # fmt: skip
    assert sum(after.values()) - sum(before.values()) > a_calls, (before, after, a_calls)
    panel = app.poll_pool()  # the page's status panel: this front end's replicas (it joined: no metrics URL)
    assert all(f"`{r.replica}`" in panel for r in front_a) and "calls sent again" in panel


def test_the_status_panel_shows_each_replica_with_its_ray_metrics(pool_pipeline):
    from ui.pool_panel import pool_markdown

    pool = pool_pipeline.pool
    panel = pool_markdown(pool)
    for r in pool.replicas():
        row = next(line for line in panel.splitlines() if f"`{r.replica}`" in line)
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1:3] == [str(r.pid), str(r.calls)] and float(cells[3]) > 0, row  # cells[3]: Ray's count
    assert pool.head.metrics_url in panel


def send_like_client(session, audio: np.ndarray) -> list:
    """The events a session gives for the WebSocket client's frames (0.2 s of int16)."""
    from ui.client import FRAME_S

    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
    step = int(FRAME_S * SAMPLE_RATE_HZ)
    return [e for i in range(0, pcm.size, step) for e in session.push(pcm[i : i + step], SAMPLE_RATE_HZ)] + (
        session.finish()
    )


def test_a_replica_killed_mid_stream_loses_nothing(pool_pipeline, pipeline, utterances, local_streams):
    """SIGKILL one replica while four streams and two uploads of four utterances keep both replicas busy: each
    gives exactly the local backend's text, calls were moved to the other replica (those in flight sent again: a
    stream whose call the pool saw fail shows one "reconnecting" notice), and Serve replaces the replica."""
    from ray import serve

    from cluster.pool import RECONNECTING

    pool = pool_pipeline.pool
    audio = recording(utterances[:4], [1.0, 1.0, 1.0, 0.5])[0]
    retries, resends, killed = pool.retries, pool.resends, []

    def upload():
        return pool_pipeline.translate_recording(audio, "s2st", "spa", "eng", expressive=False)

    jobs = [*stream_jobs(pool_pipeline, utterances[:4], pause_s=CHUNK_S / 2), upload, upload]

    def kill() -> None:
        # The replica that answers this test's calls fastest (each session stays on the replica it hashes to, so
        # either may have few of them), once it has answered three: calls are then in flight on it or routed to it
        # before Serve notices. (On a quiet machine, waiting for an upload's first segment came too late.)
        before, deadline = {r.replica: r.calls for r in pool.replicas()}, time.monotonic() + 60
        while time.monotonic() < deadline:
            busiest = max(pool.replicas(), key=lambda r: r.calls - before.get(r.replica, 0))
            if busiest.calls - before.get(busiest.replica, 0) >= 3:
                break
            time.sleep(0.02)
        killed.append((busiest, busiest.calls - before.get(busiest.replica, 0)))
        os.kill(busiest.pid, signal.SIGKILL)

    results = on_threads([*jobs, kill])
    [(victim, answered)] = killed
    assert answered >= 3  # killed while it was serving this test's sessions, not after they had ended
    for got, want in zip(results[:4], local_streams[:4], strict=True):
        assert committed(got) == committed(want) and committed(want)
    want_file = one_thread(lambda: pipeline.translate_recording(audio, "s2st", "spa", "eng", expressive=False))
    for got in results[4:6]:
        assert [s.text for s in got.segments] == [s.text for s in want_file.segments]
        assert np.array_equal(got.audio, want_file.audio)
    notices = [[e.message for e in r if isinstance(e, Notice)] for r in results[:4]]
    # A call the kill caught is sent again by the pool (one notice) or, when Serve's router learns of the death
    # first, routed to the other replica; a moved session's call that names a state carries it once ("missing").
    assert all(n in ([], [RECONNECTING]) for n in notices), (pool.retries - retries, pool.resends - resends, notices)

    deadline = time.monotonic() + REPLACED_TIMEOUT_S
    while time.monotonic() < deadline:
        states = serve.status().applications[APP].deployments["ModelReplica"].replica_states
        if states.get("RUNNING") == 2:
            break
        time.sleep(1.0)
    assert states.get("RUNNING") == 2, states
    for i in range(40):  # the replacement answers calls too (new sessions: each stays on the replica it hashes to)
        session = pool.session(f"after{i}")
        session.continue_text(session.encode(utterances[0][:SAMPLE_RATE_HZ]), "spa", [], 1)
        if len({r.replica for r in pool.replicas()} - {victim.replica}) >= 2:
            break
    assert len({r.replica for r in pool.replicas()} - {victim.replica}) >= 2, pool.replicas()


def test_the_deployment_files_are_valid_serve_configs(pool_pipeline):  # after the head: ray imported once it is
    """``deploy/serve.yaml`` and the RayService's embedded config pass Serve's own schema, and their import path
    builds the replica deployment from the settings in ``args``."""
    import yaml
    from ray.serve.schema import ServeDeploySchema

    from cluster.app import DEPLOYMENT, build

    serve_config = yaml.safe_load((REPO / "deploy" / "serve.yaml").read_text())
    service = yaml.safe_load((REPO / "deploy" / "rayservice.yaml").read_text())
    assert service["kind"] == "RayService"
    for config in (serve_config, yaml.safe_load(service["spec"]["serveConfigV2"])):
        [app] = ServeDeploySchema.model_validate(config).applications
        assert app.import_path == "cluster.app:build" and app.deployments[0].name == DEPLOYMENT
        assert app.deployments[0].ray_actor_options.num_gpus == 1
    built = build({"model": "tiny", "max_batch_rows": 4, "replicas": 3})
    engine, scheduler = built._bound_deployment.init_args
    assert engine.model == "tiny" and scheduler.max_batch_rows == 4
    assert built._bound_deployment._deployment_config.num_replicas == 3


def settled_calls(url: str) -> float:
    """All replicas' answered calls once the count stops moving (Ray reports metrics every couple of seconds, so a
    count read right after calls can still grow by them)."""
    last = sum(per_replica(url).values())
    while True:
        time.sleep(2.5)
        now = sum(per_replica(url).values())
        if now == last:
            return now
        last = now


def joining(pool_pipeline: Pipeline) -> list[str]:
    """The flags of a front end that joins this module's pool."""
    return ["--backend", "ray", "--ray-address", pool_pipeline.pool.head.address, "--ray-app-name", APP]


def test_the_cli_translates_a_file_through_the_pool(pool_pipeline, pipeline, uploads, tmp_path, monkeypatch):
    """``app.py translate`` joining the pool writes the local backend's files, and the replicas answered its calls."""
    from engine.audio import write_wav
    from engine.file_translation import write_outputs
    from ui.cli import main

    path = write_wav(tmp_path / "talk.wav", uploads[1])
    url = pool_pipeline.pool.head.metrics_url
    before = settled_calls(url)
    monkeypatch.setenv("PARLEY_CACHE_DIR", str(TEST_CACHE))
    args = ["translate", str(path), "--task", "s2tt", "--src", "eng", "--tgt", "spa", "--model", "tiny", "--device",
            "cpu", "--out", str(tmp_path / "pool"), "--quiet", *joining(pool_pipeline)]  # fmt: skip
    assert main(args) == 0
    want = one_thread(lambda: pipeline.translate_recording(load_audio(path), "s2tt", "spa", "eng"))
    write_outputs(want, tmp_path / "local", "talk")
    for name in ("talk.spa.txt", "talk.spa.srt", "talk.eng.txt"):
        assert (tmp_path / "pool" / name).read_text() == (tmp_path / "local" / name).read_text(), name
    assert (tmp_path / "local" / "talk.spa.txt").read_text().strip()
    calls = wait_for_metrics(url, lambda c: sum(c.values()) >= before + 2 * len(want.segments))
    assert sum(calls.values()) >= before + 2 * len(want.segments)  # an encode and a decode per segment at least


def test_the_desktop_mode_translates_through_the_pool(pool_pipeline, pulse, desktop_speech, tmp_path):
    """``app.py --desktop`` joining the pool: captions from a PulseAudio microphone, a clean stop, the session's
    files, and every one of its model calls answered by the replicas (the pool had no other caller meanwhile)."""
    out, stdout, stderr = tmp_path / "session", tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    url = pool_pipeline.pool.head.metrics_url
    with stdout.open("w") as out_file, stderr.open("w") as err_file:
        args = ["--model", "tiny", "--task", "s2tt", "--tgt", "spa", "--src", "eng", "--input-device", "pulse",
                "--out", str(out), *joining(pool_pipeline)]  # fmt: skip
        token = {"RAY_AUTH_TOKEN_PATH": str(Path.home() / ".ray" / "auth_token")}  # its HOME is PulseAudio's
        proc = desktop(pulse | token, *args, stdout=out_file, stderr=err_file)
        try:
            wait_for(stdout, r"^Listening on 'pulse'", proc)
            before = settled_calls(url)
            subprocess.run(["paplay", "-d", MIC_SINK, str(desktop_speech)], env=pulse, check=True, timeout=30)
            wait_for(stdout, r"^segment [\d.]+-[\d.]+ s: \S", proc, timeout_s=60)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(60) == 0, stderr.read_text()
        finally:
            proc.kill()
    assert "Traceback" not in stderr.read_text()
    assert (out / "translation.txt").read_text(encoding="utf-8").strip()
    calls = wait_for_metrics(url, lambda c: sum(c.values()) >= before + 2)
    assert sum(calls.values()) >= before + 2  # the segment's encode and continuation, at least


def started_by(pid: int) -> dict[int, Process]:
    """``pid`` and every process below it, or in the session it leads (a process whose parent died is adopted by
    init but keeps its session)."""
    table = process_table()
    return subtree([pid], table) | {p.pid: p for p in table.values() if p.session == pid}


@pytest.fixture(scope="module", autouse=True)
def one_command_run(tmp_path_factory):
    """The one-command run (``./parley run --backend ray`` after its setup step, which the tests do not repeat) with a
    head of its own, started before this module's first test so that its start (tens of seconds, mostly waiting on
    Ray) overlaps the other tests; whatever it left is killed at the end."""
    log = tmp_path_factory.mktemp("run") / "run.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("RAY_ADDRESS", None)
    args = [sys.executable, "app.py", "--backend", "ray", "--replicas", "1", "--replica-num-cpus", "0.5", "--model",
            "tiny", "--device", "cpu", "--cache-dir", str(TEST_CACHE), "--port", str(RUN_PORT), "--ray-app-name",
            "parley-run", "--ray-dashboard-port", str(RUN_DASHBOARD_PORT), "--ray-metrics-port",
            str(RUN_METRICS_PORT)]  # fmt: skip
    with log.open("w") as out:
        run = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=out, start_new_session=True)
    try:
        yield run, log
    finally:
        end(started_by(run.pid), grace_s=0.0)
        run.wait()


def test_sigterm_stops_everything_the_one_command_run_started(one_command_run):
    """The one-command run, serving; one SIGTERM to it, and within a bounded wait no process it started survives
    (GCS, raylet, replica, Serve controller, dashboard and runtime-env agents), and it exits."""
    run, log = one_command_run
    wait_for_port(RUN_PORT, run, log)
    tree = started_by(run.pid)
    commands = " ".join(p.command for p in tree.values())
    for part in ("gcs_server", "raylet", "dashboard/agent.py", "runtime_env/agent/main.py", "ModelReplica"):
        assert part in commands, (part, tree)  # what must be stopped was running
    run.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOPPED_WITHIN_S
    left = survivors(tree)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = survivors(left)
    assert not left, left
    assert run.wait(5) is not None
