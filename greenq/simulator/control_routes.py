"""The simulator's own control API (``/sim/...``), for tests and demos: fill queues, read counters, inject
faults. It has no authentication: the simulator listens on loopback only.
"""

from __future__ import annotations

from typing import Any, get_args

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from greenq.simulator.faults import FaultKind, FaultRule
from greenq.simulator.state import SimInstance


async def list_instances(request: Request) -> Response:
    instances: dict[int, SimInstance] = request.app.state.instances
    return JSONResponse([instance.snapshot() for instance in instances.values()])


async def add_notifications(request: Request) -> Response:
    """Body: one notification object (kept byte for byte) or a JSON array of them (re-encoded)."""
    instance = _instance(request)
    if instance is None:
        return _not_found()
    raw = (await request.body()).strip()
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return JSONResponse({"error": "body must be JSON"}, status_code=400)
    if isinstance(parsed, dict):
        bodies = [raw]
    elif isinstance(parsed, list) and all(isinstance(item, dict) for item in parsed):
        bodies = [orjson.dumps(item) for item in parsed]
    else:
        return JSONResponse({"error": "body must be an object or an array of objects"}, status_code=400)
    receipts = await instance.add(bodies)
    return JSONResponse({"receiptIds": receipts, **instance.snapshot()})


async def stats(request: Request) -> Response:
    instance = _instance(request)
    return _not_found() if instance is None else JSONResponse(instance.snapshot())


async def faults(request: Request) -> Response:
    """POST ``{"kind": "fail"|"delay"|"drop"|"lose", "count": N, "status": 500, "seconds": 1.0,
    "methods": [...], "every": K}`` adds a fault for the next N calls (``lose``: N notifications, one in K);
    DELETE clears them.
    """
    instance = _instance(request)
    if instance is None:
        return _not_found()
    if request.method == "DELETE":
        instance.faults.clear()
        return JSONResponse(instance.snapshot())
    try:
        rule = _rule(orjson.loads(await request.body()))
    except (orjson.JSONDecodeError, ValueError, TypeError) as error:
        return JSONResponse({"error": f"bad fault: {error}"}, status_code=400)
    instance.faults.add(rule)
    return JSONResponse(instance.snapshot())


async def journal(request: Request) -> Response:
    """POST ``{"lag": seconds}`` changes how long messages take to show in the journal (0 = at once)."""
    instance = _instance(request)
    if instance is None:
        return _not_found()
    try:
        spec = orjson.loads(await request.body())
        instance.journal.lag = float(spec["lag"])
    except (orjson.JSONDecodeError, KeyError, ValueError, TypeError) as error:
        return JSONResponse({"error": f"bad journal settings: {error}"}, status_code=400)
    return JSONResponse(instance.snapshot())


def _rule(spec: Any) -> FaultRule:
    if not isinstance(spec, dict) or spec.get("kind") not in get_args(FaultKind):
        raise ValueError("kind must be fail, delay, drop or lose")
    methods = spec.get("methods")
    return FaultRule(
        kind=spec["kind"],
        remaining=int(spec.get("count", 1)),
        status=int(spec.get("status", 500)),
        seconds=float(spec.get("seconds", 0.0)),
        methods=None if methods is None else frozenset(str(method) for method in methods),
        every=int(spec.get("every", 1)),
    )


def _instance(request: Request) -> SimInstance | None:
    instances: dict[int, SimInstance] = request.app.state.instances
    return instances.get(request.path_params["id_instance"])


def _not_found() -> Response:
    return JSONResponse({"error": "no such instance"}, status_code=404)
