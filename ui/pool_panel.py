"""The app's small status panel for ``--backend ray``: each replica this front end has reached, and the calls
each replica answered for every front end (from Ray's Prometheus metrics, when this process started the head)."""

from __future__ import annotations

import time

from cluster.metrics import per_replica


def pool_markdown(pool, now: float | None = None) -> str:
    """A Markdown table from a :class:`cluster.pool.ReplicaPool` (passed in: this module imports no Ray)."""
    now = time.time() if now is None else now
    rows = pool.replicas()
    url = pool.head.metrics_url
    try:
        answered = per_replica(url) if url else {}
    except OSError:  # the metrics agent is not up yet, or is restarting: the panel shows what this process saw
        answered = {}
    lines = [
        "| replica | process | calls from here | all calls (Ray metrics) | ongoing | mean latency | mean batch rows "
        "| last answer |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        total = f"{answered[r.replica]:.0f}" if r.replica in answered else "–"
        lines.append(
            f"| `{r.replica}` | {r.pid} | {r.calls} | {total} | {r.ongoing_calls} | {r.mean_latency_s * 1000:.0f} ms "
            f"| {r.mean_batch_rows:.1f} | {now - r.last_seen:.0f} s ago |"
        )
    if not rows:
        lines.append("| (no call answered yet) | | | | | | | |")
    where = f"; Prometheus metrics at {url}" if url else ""
    head = f"**Model pool** `{pool.head.address}`: calls sent again after a replica was lost: {pool.retries}{where}"
    return head + "\n\n" + "\n".join(lines)
