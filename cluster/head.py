"""Start a local Ray head bound to 127.0.0.1, or join a running cluster; deploy the replicas if they are not there.

A head started here lives in this process (``ray.init`` starts its GCS, raylet and workers as children) and is
stopped with it (``ray.shutdown`` at exit, then whatever Ray left of its process tree: :mod:`cluster.processes`), so
``./parley run --backend ray`` stops everything it started, on Ctrl-C, SIGTERM or SIGHUP. Its
dashboard and Prometheus metrics listen on 127.0.0.1 only. Joining (``--ray-address``) changes nothing on the
cluster but deploying the application when no front end has yet.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cluster.processes import end, ray_processes
from compose.settings import Settings
from engine.translator import Translator

if TYPE_CHECKING:
    from cluster.pool import ReplicaPool

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
#: Ray picks the machine's outward address for its node unless told that this is no cluster (read at import).
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
#: How often replicas report metrics (Ray's default is 10 s; the status panel and the tests read them sooner).
METRICS_REPORT_MS = 2000
#: A local head's system settings. Ray's memory monitor is off: it kills workers (the replicas, Serve's
#: controller) whenever the *machine* nears its memory limit, which on a machine shared with other programs
#: happens without any Ray process being large; the kernel's OOM killer still guards the machine.
LOCAL_SYSTEM_CONFIG = {"metrics_report_interval_ms": METRICS_REPORT_MS, "memory_monitor_refresh_ms": 0}


class PoolUnavailableError(RuntimeError):
    """Ray could not be started or joined, the replicas could not be deployed, or none answered for long; the
    message is one plain sentence (and says why)."""


@dataclass(frozen=True)
class Head:
    """What :func:`start` connected to."""

    address: str  # the GCS address other front ends join with ``--ray-address``
    started_here: bool
    metrics_url: str | None  # Prometheus endpoint of a head started here
    #: Set to let the thread that started a local head end (see :func:`_init_on_keeper_thread`).
    released: threading.Event | None = None


def start(settings: Settings) -> Head:
    """Join ``settings.cluster.ray_address`` or start a local head; then make sure the application is deployed."""
    cluster = settings.cluster
    started_here = cluster.ray_address is None
    released = None
    if started_here:
        os.environ.update(LOOPBACK_ENV)  # before ray is imported, so its node address is the loopback one
    try:
        import ray
        from ray import serve

        if started_here:
            released = _init_on_keeper_thread(
                include_dashboard=cluster.ray_dashboard_port > 0,
                dashboard_host=LOOPBACK,
                dashboard_port=cluster.ray_dashboard_port or None,
                _node_ip_address=LOOPBACK,
                _metrics_export_port=cluster.ray_metrics_port,
                _system_config=LOCAL_SYSTEM_CONFIG,
                runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},  # replicas import Parley from this checkout
                logging_level=logging.WARNING,
                log_to_driver=False,
            )
        elif not ray.is_initialized():  # a second front end in this process shares the first one's connection
            ray.init(address=cluster.ray_address, logging_level=logging.WARNING, log_to_driver=False)
        serve.start(proxy_location="Disabled")  # front ends call the replicas through handles: no HTTP proxy
        if cluster.ray_app_name not in serve.status().applications:
            from cluster.app import deployment

            log.info("deploying %d replica(s) of %s as %r", cluster.replicas, settings.engine.model,
                     cluster.ray_app_name)  # fmt: skip
            serve.run(deployment(settings), name=cluster.ray_app_name, route_prefix=None)
        address = ray.get_runtime_context().gcs_address
    except Exception as e:  # any failure to start Ray is reported as one reason, with its cause attached
        raise PoolUnavailableError(f"The Ray model pool could not start: {e}") from e
    metrics = f"http://{LOOPBACK}:{cluster.ray_metrics_port}/metrics" if started_here else None
    how = "started here" if started_here else "joined"
    log.info("Ray model pool %r at %s (%s)", cluster.ray_app_name, address, how)
    head = Head(address, started_here, metrics, released)
    if started_here:
        atexit.register(_at_exit, head)  # registered after Ray's own exit handler, so it runs first
    return head


def open_pool(settings: Settings, translator: Translator) -> ReplicaPool:
    """The front end's pool client: starts or joins Ray (:func:`start`) and binds a handle to the replicas."""
    head = start(settings)
    from ray import serve

    from cluster.app import DEPLOYMENT
    from cluster.pool import ReplicaPool

    return ReplicaPool(serve.get_deployment_handle(DEPLOYMENT, settings.cluster.ray_app_name), translator, head)


def stop(head: Head) -> None:
    """Disconnect; a head started here is shut down with its replicas and every process Ray started for it."""
    import ray

    if not ray.is_initialized():
        return  # stopped already (the pool was closed, then the exit handler runs)
    if head.started_here:
        from ray import serve

        serve.shutdown()
    _shut_down(head)


def _shut_down(head: Head) -> None:
    import ray

    started = ray_processes() if head.started_here else {}  # before the shutdown leaves some of them orphans
    ray.shutdown()
    end(started)
    if head.released is not None:
        head.released.set()


def _at_exit(head: Head) -> None:
    """A front end that exits without closing its pool (Ctrl-C, or SIGTERM through :mod:`compose.stopping`)."""
    import ray

    if ray.is_initialized():
        _shut_down(head)


def _init_on_keeper_thread(**options) -> threading.Event:
    """``ray.init(**options)`` on a thread that lives until the returned event is set.

    Why: Ray starts the head's GCS and raylet with a parent-death signal, which Linux sends when the *thread* that
    started them ends, not the process. The web app loads its pipeline on a short-lived thread, so a head started
    there would die with it a moment later."""
    import ray

    ready, released, failure = threading.Event(), threading.Event(), []

    def keep() -> None:
        try:
            ray.init(**options)
        except BaseException as e:  # handed to the caller's thread
            failure.append(e)
        ready.set()
        if not failure:
            released.wait()

    threading.Thread(target=keep, name="parley-ray-head", daemon=True).start()
    ready.wait()
    if failure:
        raise failure[0]
    return released
