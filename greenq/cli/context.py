"""Plumbing shared by the commands: command-line overrides of settings and, for the operator commands,
settings, one Redis client, the terminal and Redis errors.

A command gets an :class:`OpsContext` instead of reading globals, so it can be run and tested in-process.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TextIO

from redis import Redis
from redis.exceptions import RedisError

from greenq.core.logs import configure_logging
from greenq.core.redis_conn import connect
from greenq.core.settings import CommonSettings

#: Exit codes of the operator commands.
EXIT_OK: Final = 0
EXIT_INCOMPLETE: Final = 1  # not found, partly done, or an unreadable entry
EXIT_REFUSED: Final = 2  # a usage error or a refused confirmation
EXIT_REDIS: Final = 3  # Redis unreachable or a command failed


@dataclass(frozen=True)
class OpsContext:
    """What one operator command may use."""

    settings: CommonSettings
    redis: Redis
    out: TextIO
    err: TextIO
    stdin: TextIO


OpsHandler = Callable[[argparse.Namespace, OpsContext], int]


def given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The options among ``names`` given on the command line: they override the environment's settings."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def operator_command(handler: OpsHandler) -> Callable[[argparse.Namespace], int]:
    """Wrap ``handler`` as an argparse ``run``: settings from the environment, one client, clean errors."""

    def run(args: argparse.Namespace) -> int:
        settings = CommonSettings()
        configure_logging(settings.log_level)
        redis = connect(settings.require_redis_url(), settings.redis_socket_timeout)
        try:
            return handler(args, OpsContext(settings, redis, sys.stdout, sys.stderr, sys.stdin))
        except RedisError as error:
            # The message names host and port at most; the URL (which may carry a password) is not echoed.
            sys.stderr.write(f"greenq: Redis error: {type(error).__name__}: {error}\n")
            return EXIT_REDIS
        finally:
            redis.close()

    return run
