"""``greenq ingress``: the webhook receiver, served by uvicorn in one process or several.

The command builds the settings once. uvicorn pickles its ``Config`` into every process it spawns, and the
app factory in that config carries the settings, so each process gets the command's settings object
itself: nothing is passed through the environment and no process reads it again.
"""

from __future__ import annotations

import argparse
import functools
import gc
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from greenq.cli.context import given
from greenq.core.logs import configure_logging
from greenq.core.settings import IngressSettings

if TYPE_CHECKING:
    import uvicorn

    from greenq.ingress.app import IngressApp

log = logging.getLogger("greenq.ingress")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``greenq ingress``."""
    ingress = commands.add_parser("ingress", help="run the webhook ingress (uvicorn)")
    ingress.add_argument("--host", help="bind address (GREENQ_HOST)")
    ingress.add_argument("--port", type=int, help="port (GREENQ_PORT)")
    ingress.add_argument("--processes", type=int, help="uvicorn worker processes (GREENQ_PROCESSES)")
    ingress.add_argument("--metrics-dir", help="metrics dir when --processes > 1 (default: a fresh temp dir)")
    ingress.set_defaults(run=_run_ingress)


def _run_ingress(args: argparse.Namespace) -> int:
    settings = IngressSettings(**given(args, "host", "port", "processes"))
    configure_logging(settings.log_level)
    if settings.processes > 1:
        # Several uvicorn processes share one port: their metrics go to files that /metrics adds up. (One
        # process keeps its cheaper in-memory values.)
        metrics_dir = _empty_directory(args.metrics_dir)
        settings = settings.model_copy(update={"metrics_dir": str(metrics_dir)})
    return serve(settings)


def _empty_directory(path: str | None) -> Path:
    """``path`` emptied (or a fresh temporary directory), for this run's metric files alone."""
    directory = Path(path or tempfile.mkdtemp(prefix="greenq-ingress-metrics-"))
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


def serve(settings: IngressSettings) -> int:
    """Serve until stopped, as ``uvicorn.run`` does; the exit code is uvicorn's."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    config = uvicorn_config(settings)
    server = uvicorn.Server(config)
    try:
        if config.workers > 1:
            # The parent binds the socket once and supervises the processes; each unpickles ``config``.
            Multiprocess(config, sockets=[config.bind_socket()]).run()
            return 0
        server.run()
    except KeyboardInterrupt:
        pass
    return 0 if server.started else STARTUP_FAILURE


def uvicorn_config(settings: IngressSettings) -> uvicorn.Config:
    """What uvicorn pickles into each process it spawns: the app factory together with ``settings``."""
    import uvicorn

    return uvicorn.Config(
        functools.partial(ingress_app, settings),
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.processes,
        log_config=None,
        access_log=False,
        proxy_headers=False,  # the ingress resolves forwarded addresses itself, trusting only known proxies
        server_header=False,
        timeout_graceful_shutdown=20,
    )


def ingress_app(settings: IngressSettings) -> IngressApp:
    """uvicorn's app factory, called once in each ingress process with the settings the command built."""
    configure_logging(settings.log_level)
    if settings.metrics_dir:
        _write_metrics_to(settings.metrics_dir)
    from greenq.ingress.app import create_app

    app = create_app(settings)
    # Everything imported and built so far lives as long as the process: out of the collector's sight,
    # full collections no longer walk it on every request-heavy stretch (one gen-2 pass cost ~40 ms).
    gc.freeze()
    return app


def _write_metrics_to(directory: str) -> None:
    """Put this process's metric values in ``directory``, where /metrics of every process adds them up.

    prometheus_client takes no argument for this: it reads PROMETHEUS_MULTIPROC_DIR from the environment
    when first imported. So the variable is set here, in the uvicorn process that writes the values, just
    before it imports the app (and prometheus_client with it), and not in the command's own environment:
    the supervising parent serves no metrics, and the directory stays a setting handed down rather than a
    variable every child inherits. A spawned process imports greenq's command line before this runs, so
    that must not import prometheus_client (tests/test_processes.py starts the ingress that way).
    """
    if "prometheus_client" in sys.modules:
        from uvicorn.config import STARTUP_FAILURE

        # A bug, not a setting: stop the whole ingress (uvicorn's supervisor does not restart a process
        # that exits with STARTUP_FAILURE) rather than serve metrics that no longer add up.
        log.error("prometheus_client was imported before its multiprocess directory was set")
        sys.exit(STARTUP_FAILURE)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
