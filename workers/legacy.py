"""Rolling upgrade: names the release before one import root wrote down, and today's names for them.

That release installed ``workers`` as a top-level package, so its RQ jobs in Redis name their function
``workers.jobs.*`` and users' settings may say ``GREENQ_ROUTER=workers.handlers.builtin:...``. Installed
today, ``workers`` does not exist: the worker looks these names up here (jobs in
``greenq.workers.rq_job.GreenqJob``, routers in ``greenq.workers.router.load_router``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from greenq.core import keys

#: RQ job function paths of the previous release -> today's.
JOB_FUNCTIONS: Final[Mapping[str, str]] = {
    "workers.jobs.process_batch": keys.JOB_FUNCTION,
    "workers.jobs.drain_partition": keys.DRAIN_FUNCTION,
}

#: ``GREENQ_ROUTER`` values naming the previous release's built-in routers -> today's.
ROUTERS: Final[Mapping[str, str]] = {
    f"workers.handlers.builtin:{name}": f"greenq.workers.handlers.builtin:{name}"
    for name in ("default_router", "journal_router", "all_sinks_router")
}
