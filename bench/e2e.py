"""End-to-end benchmark: wrk -> nginx -> 2 ingress -> Redis (AOF, fsync always) -> 2 workers, sustained.

Every request carries a distinct notification (the samples mix, unique idMessage), so the processed count
is exact: ``lost`` is counted (accepted minus the outcomes the workers committed), not assumed. Latency is
wrk's per-request time through nginx, i.e. the ack latency GREEN API would see.

Order is counted too: each wrk connection is one instance with one request in flight that numbers its
notifications (``bench/e2e.lua``), and the workers run ``bench.ordering_router``, whose handler counts every
notification committed after a higher number of its chat (``order_violations``).
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx2 as httpx
import orjson
from redis import Redis

from bench.common import ROOT, SAMPLES, WrkResult, cpu_seconds, peak_rss_mb, save, wrk
from bench.ordering_router import ROUTER_PATH, OrderCounts, order_counts
from greenq.core import keys
from greenq.core.contract import notification_queue
from greenq.core.settings import CommonSettings
from greenq.local.procs import free_port
from greenq.local.up import LocalPipeline, UpOptions

LUA = ROOT / "bench" / "e2e.lua"
#: The headline run measures what a deployment runs unless told otherwise.
DEFAULT_ORDERING: str = CommonSettings.model_fields["ordering"].default


def body_templates(path: Path) -> None:
    """The samples that carry an idMessage, with the id and the instance replaced by wrk's per-request
    placeholders (e2e.lua: each connection its own instance and numbered ids)."""
    bodies = []
    for sample in SAMPLES:
        data = orjson.loads(sample.read_bytes())
        if "idMessage" in data:
            instance = {**data["instanceData"], "idInstance": "IDINSTANCE"}
            bodies.append(orjson.dumps({**data, "idMessage": "IDMESSAGE", "instanceData": instance}).decode())
    path.write_text("\n--8<--\n".join(bodies))


def scrape_sum(url: str, prefix: str) -> float:
    text = httpx.get(url, timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def processed(redis: Redis) -> int:
    """Final outcomes committed (the event streams are trimmed to their byte budget, so not those)."""
    counts = cast(dict[bytes, bytes], redis.hgetall(keys.OUTCOME_COUNTS))
    return sum(int(value) for value in counts.values())


def topology_pids(pipeline: LocalPipeline) -> dict[str, int]:
    """Every process of the topology by a readable name."""
    found = {f"{child.role}-{index}": child.process.pid for index, child in enumerate(pipeline.children)}
    if pipeline.redis is not None and pipeline.redis.process is not None:
        found["redis"] = pipeline.redis.process.pid
    if pipeline.nginx is not None and pipeline.nginx.process is not None:
        master = pipeline.nginx.process.pid
        found["nginx-master"] = master
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        found.update({f"nginx-worker-{n}": int(pid) for n, pid in enumerate(children)})
    return found


@dataclass(frozen=True)
class Measured:
    """What one loaded run of the topology measured, before it is summarised."""

    result: WrkResult
    load_seconds: float
    drain_seconds: float
    backlog: int
    server_accepted: float
    done: int
    rss: dict[str, float]
    cpu: dict[str, float]
    batches: list[float]
    order: OrderCounts


def main(
    seconds: int = 60,
    connections: int = 32,
    *,
    appendfsync: str = "always",
    ordering: str = DEFAULT_ORDERING,
    workers: int = 2,
    compare: bool = False,
) -> dict[str, Any]:
    """One run; ``compare`` (or a non-default mode, workers or connections) saves it under its own name."""
    work = Path(tempfile.mkdtemp(prefix="greenq-bench-e2e-"))
    pipeline = LocalPipeline(_options(work, appendfsync, ordering, workers), out=io.StringIO())
    pipeline.start()
    try:
        measured = measure(pipeline, work, seconds, connections)
    finally:
        pipeline.stop()
    summary = {
        "appendfsync": appendfsync,
        "ordering": ordering,
        "workers": workers,
        "seconds": seconds,
        "connections": connections,
        **figures(measured),
    }
    save(result_name(appendfsync, ordering, workers, connections, compare=compare), summary)
    return summary


def _options(work: Path, appendfsync: str, ordering: str, workers: int) -> UpOptions:
    """The benchmarked topology: nginx, two ingresses, ``workers`` workers, one private Redis."""
    return UpOptions(
        ingress=2,
        workers=workers,
        port=free_port(),
        data_dir=work,
        nginx=True,
        log_dir=work / "logs",
        appendfsync=appendfsync,
        child_settings=(
            ("GREENQ_STREAM_MAXLEN", "10000000"),
            ("GREENQ_LOG_LEVEL", "INFO"),
            ("GREENQ_ORDERING", ordering),
            # The order check; the workers import bench from the repository: ``python -m greenq`` puts their
            # working directory (inherited from ``python -m bench``, run at the root) first on sys.path.
            ("GREENQ_ROUTER", ROUTER_PATH),
        ),
    )


def measure(pipeline: LocalPipeline, work: Path, seconds: int, connections: int) -> Measured:
    """Load the running topology with wrk, wait for the workers to drain it, read every process's usage."""
    assert pipeline.redis is not None
    assert pipeline.token_file is not None
    redis = Redis.from_url(pipeline.redis.url)
    templates = work / "bodies.txt"
    body_templates(templates)
    started = time.monotonic()
    token = pipeline.token_file.read_text().strip()
    # One thread per connection: e2e.lua keeps each connection's sequence in its thread's Lua state.
    result = wrk(
        pipeline.webhook_url, templates, token, seconds, connections, threads=connections, script=LUA
    )
    load_seconds = time.monotonic() - started
    backlog = queued(redis)
    server_accepted = ingress_accepted(pipeline)
    wait_for_processed(redis, server_accepted)
    drain_seconds = time.monotonic() - started
    done = processed(redis)
    pids = topology_pids(pipeline)
    return Measured(
        result=result,
        load_seconds=load_seconds,
        drain_seconds=drain_seconds,
        backlog=backlog,
        server_accepted=server_accepted,
        done=done,
        rss={name: peak_rss_mb(pid) for name, pid in pids.items()},
        cpu={name: round(cpu_seconds(pid), 1) for name, pid in pids.items()}
        | {"wrk": round(result.cpu_seconds, 1)},
        batches=[
            scrape_sum(c.url, "greenq_batch_size_count") for c in pipeline.children if c.role == "worker"
        ],
        order=order_counts(redis),
    )


def queued(redis: Redis) -> int:
    """What still waits: RQ jobs (batches, or one drain per partition) plus every partition stream's entries."""
    return notification_queue(redis).count + sum(
        int(redis.xlen(stream)) for stream in cast(list[bytes], redis.keys("greenq:{p*}:stream"))
    )


def ingress_accepted(pipeline: LocalPipeline) -> float:
    """The ingresses' own count of accepted requests (including those in flight when wrk stopped)."""
    return sum(
        scrape_sum(f"{child.url}/metrics", 'greenq_ingress_requests_total{outcome="accepted"}')
        for child in pipeline.children
        if child.role == "ingress"
    )


def wait_for_processed(redis: Redis, target: float) -> None:
    """Until the workers have committed ``target`` outcomes, or five minutes have passed."""
    deadline = time.monotonic() + 300
    while processed(redis) < target and time.monotonic() < deadline:
        time.sleep(0.2)


def figures(m: Measured) -> dict[str, Any]:
    """The saved figures of one run: rates, counts, latency, per-process usage."""
    accepted = m.result.requests - m.result.non_2xx
    return {
        "offered_per_second": m.result.requests / m.load_seconds,
        "accepted_per_second": accepted / m.load_seconds,
        "drained_per_second": m.done / m.drain_seconds,
        "accepted_by_wrk": accepted,
        "accepted_by_ingress": m.server_accepted,
        "refused": m.result.non_2xx,
        "processed": m.done,
        "lost": m.server_accepted - m.done,
        "jobs": sum(m.batches),
        "mean_batch": m.done / max(1.0, sum(m.batches)),
        "backlog_at_end_of_load": m.backlog,
        "drain_after_load_seconds": m.drain_seconds - m.load_seconds,
        "p50_ack_ms": m.result.p50_ms,
        "p99_ack_ms": m.result.p99_ms,
        "peak_rss_mb": m.rss,
        "cpu_seconds": m.cpu,
        "max_rss_mb": max(m.rss.values()),
        "order_checked": m.order.checked,
        "order_violations": m.order.violations,
        "order_chats": m.order.chats,
    }


def result_name(appendfsync: str, ordering: str, workers: int, connections: int, *, compare: bool) -> str:
    """``e2e`` for the default run, otherwise a name that tells the variant apart."""
    name = "e2e" if appendfsync == "always" else f"e2e-{appendfsync}"
    if compare or ordering != DEFAULT_ORDERING or workers != 2 or connections != 32:
        name = f"{name}-{ordering}-c{connections}-w{workers}"
    return name


if __name__ == "__main__":
    args = sys.argv[1:]
    print(
        main(
            seconds=int(args[0]) if args else 60,
            connections=int(args[1]) if len(args) > 1 else 32,
            ordering=args[2] if len(args) > 2 else DEFAULT_ORDERING,
            workers=int(args[3]) if len(args) > 3 else 2,
        )
    )
