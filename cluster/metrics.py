"""Reading the replicas' Ray metrics back from a Prometheus endpoint (the status panel, the tests, the bench).

The replicas export ``parley_replica_*`` through Ray's metrics agent (:mod:`cluster.replica`); Ray prefixes them
with ``ray_`` and adds ``_total`` to counters. No Ray import here: the endpoint is plain HTTP text.
"""

from __future__ import annotations

import re
import urllib.request

CALLS = "ray_parley_replica_calls_total"
_SAMPLE = re.compile(r"^(?P<name>[a-z_]+)\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_REPLICA = re.compile(r'replica="([^"]+)"')


def per_replica(url: str, name: str = CALLS, timeout_s: float = 5.0) -> dict[str, float]:
    """The metric ``name`` summed per replica tag (over calls and workers), from the endpoint at ``url``."""
    text = urllib.request.urlopen(url, timeout=timeout_s).read().decode()
    totals: dict[str, float] = {}
    for line in text.splitlines():
        sample = _SAMPLE.match(line)
        if sample is None or sample["name"] != name:
            continue
        replica = _REPLICA.search(sample["labels"])
        if replica is not None:
            totals[replica[1]] = totals.get(replica[1], 0.0) + float(sample["value"])
    return totals
