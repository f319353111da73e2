"""The Serve application: one deployment of :class:`cluster.replica.ModelReplica`, sized by the cluster settings.

``build`` is also the ``import_path`` of ``deploy/serve.yaml`` (``serve deploy``, KubeRay's RayService): its args are
Parley's settings by field name (``model``, ``precision``, ``max_batch_rows``, …), read as ``PARLEY_<FIELD>`` would be.
"""

from __future__ import annotations

from collections.abc import Mapping

from ray import serve
from ray.serve import Application
from ray.serve.config import RequestRouterConfig

from cluster.replica import ModelReplica
from compose.settings import ENV_PREFIX, Settings, load_settings

DEPLOYMENT = "ModelReplica"
#: Calls one replica accepts at once before Serve routes elsewhere (the scheduler bounds its own queue below this).
MAX_ONGOING_CALLS = 64
#: Serve asks every replica this often whether it is healthy; one that fails or does not answer is replaced.
HEALTH_CHECK_PERIOD_S = 5.0
HEALTH_CHECK_TIMEOUT_S = 30.0
#: On downscale or redeploy a replica takes no new calls and finishes those in flight for at most this long.
GRACEFUL_SHUTDOWN_S = 30.0
#: Routes by the handle's ``session_id`` (the session key) on a hash ring of the replicas: a session stays on one
#: replica while the set of replicas is unchanged; when it changes, only the sessions of the replica that went or
#: came move (their next call is answered "missing" and carries its state once).
SESSION_ROUTER = "ray.serve.experimental.consistent_hash_router.ConsistentHashRouter"


def deployment(settings: Settings) -> Application:
    cluster = settings.cluster
    options: dict = {
        "name": DEPLOYMENT,
        "ray_actor_options": {"num_cpus": cluster.replica_num_cpus, "num_gpus": cluster.replica_num_gpus},
        "max_ongoing_requests": MAX_ONGOING_CALLS,
        "health_check_period_s": HEALTH_CHECK_PERIOD_S,
        "health_check_timeout_s": HEALTH_CHECK_TIMEOUT_S,
        "graceful_shutdown_timeout_s": GRACEFUL_SHUTDOWN_S,
    }
    if cluster.session_affinity:
        options["request_router_config"] = RequestRouterConfig(request_router_class=SESSION_ROUTER)
    if cluster.autoscaling:
        options["autoscaling_config"] = {
            "min_replicas": cluster.min_replicas,
            "max_replicas": cluster.max_replicas,
            "target_ongoing_requests": cluster.target_ongoing_requests,
        }
    else:
        options["num_replicas"] = cluster.replicas
    return serve.deployment(ModelReplica).options(**options).bind(settings.engine, settings.scheduler)


def build(args: Mapping[str, object]) -> Application:
    """Serve's application builder: ``args`` are settings by field name, e.g. ``{"model": "tiny"}``."""
    environ = {ENV_PREFIX + str(name).upper(): str(value) for name, value in args.items()}
    return deployment(load_settings(environ=environ))
