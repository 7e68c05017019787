"""CLI commands that talk to GREEN API's HTTP API: ``greenq poll``, ``greenq reconcile`` and
``greenq instance show|configure``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx2

from greenq.core.greenapi.errors import ApiError
from greenq.core.settings import InstanceConfig, PollerSettings, ReconcileSettings
from greenq.pull.api import GreenApiClient
from greenq.pull.errors import PollerError, UnknownInstance

AnyPollerSettings = TypeVar("AnyPollerSettings", bound=PollerSettings)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this package's sub-commands to ``greenq``."""
    _register_poll(commands)
    _register_reconcile(commands)
    _register_instance(commands)


def _register_poll(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    poll = commands.add_parser("poll", help="pull notifications from GREEN API (receive/deleteNotification)")
    _add_instance_names_option(poll, "poll")
    poll.add_argument("--receive-timeout", type=int, help="long-poll seconds, 5-60 (GREENQ_RECEIVE_TIMEOUT)")
    poll.add_argument("--metrics-port", type=int, help="metrics port, 0 = off (GREENQ_POLLER_METRICS_PORT)")
    poll.set_defaults(run=_run_poll)


def _register_reconcile(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    reconcile = commands.add_parser(
        "reconcile", help="recover notifications GREEN API journaled but never delivered"
    )
    _add_instance_names_option(reconcile, "reconcile")
    reconcile.add_argument(
        "--every", type=float, metavar="SECONDS", help="run a pass every SECONDS until stopped"
    )
    reconcile.add_argument(
        "--window-minutes", type=int, help="journal window read (GREENQ_RECONCILE_WINDOW_MINUTES)"
    )
    reconcile.add_argument(
        "--grace",
        type=float,
        metavar="SECONDS",
        help="skip younger messages (GREENQ_RECONCILE_GRACE_SECONDS)",
    )
    reconcile.add_argument(
        "--chat", metavar="CHAT_ID", help="one chat's history (getChatHistory) instead of the journal window"
    )
    reconcile.add_argument("--count", type=int, default=100, help="messages of --chat to read (default 100)")
    reconcile.set_defaults(run=_run_reconcile)


def _register_instance(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    instance = commands.add_parser("instance", help="show or change a GREEN API instance's settings")
    actions = instance.add_subparsers(required=True, metavar="ACTION")
    show = actions.add_parser("show", help="print getSettings with tokens masked")
    _add_instance_option(show)
    show.set_defaults(run=_run_show)

    configure = actions.add_parser("configure", help="switch an instance to push or pull mode (setSettings)")
    _add_instance_option(configure)
    mode = configure.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--push", metavar="URL", help="push mode: set webhookUrl to URL and a new webhookUrlToken"
    )
    mode.add_argument("--pull", action="store_true", help="pull mode: clear webhookUrl")
    configure.add_argument(
        "--enable",
        default="",
        metavar="LIST",
        help="switches to set to yes, e.g. incomingWebhook,stateWebhook",
    )
    configure.add_argument("--disable", default="", metavar="LIST", help="switches to set to no")
    configure.add_argument(
        "--env-file",
        type=Path,
        default=Path(".env"),
        help="env file whose GREENQ_TOKENS gets the new token in push mode (default ./.env)",
    )
    configure.set_defaults(run=_run_configure)


def _add_instance_names_option(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument(
        "--instance",
        action="append",
        dest="instance_names",
        metavar="NAME",
        help=f"{verb} only this configured instance (repeatable; default: all of GREENQ_INSTANCES)",
    )


def _add_instance_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--instance", metavar="NAME", help="configured instance name (default: the only one configured)"
    )


def _run_reconcile(args: argparse.Namespace) -> int:
    from greenq.pull.reconcile import ChatRequest
    from greenq.pull.reconcile_runner import run_reconcile

    settings = ReconcileSettings(
        **_given(reconcile_window_minutes=args.window_minutes, reconcile_grace_seconds=args.grace)
    )
    try:
        settings = _only(settings, args.instance_names)
    except UnknownInstance as error:
        return _refused(error)
    problem = _reconcile_problem(args, settings)
    if problem:
        return _refused(problem)
    chat = None if args.chat is None else ChatRequest(args.chat, args.count)
    return run_reconcile(settings, args.every, chat)


def _reconcile_problem(args: argparse.Namespace, settings: ReconcileSettings) -> str | None:
    """Why these options cannot work together, or None."""
    if args.chat is not None:
        if len(settings.instances) != 1 or args.every is not None:
            return "--chat needs exactly one instance (--instance NAME) and no --every"
        return None if args.count >= 1 else "--count must be at least 1"
    if args.every is None:
        return None
    return settings.check_interval(args.every) if args.every > 0 else "--every must be positive"


def _run_poll(args: argparse.Namespace) -> int:
    from greenq.pull.runner import run_poller

    settings = _load_settings(
        _given(receive_timeout=args.receive_timeout, poller_metrics_port=args.metrics_port)
    )
    try:
        settings = _only(settings, args.instance_names)
    except UnknownInstance as error:
        return _refused(error)
    return run_poller(settings)


def _refused(reason: object, code: int = 2) -> int:
    """Say on stderr why the command did not run (or failed); the exit code."""
    sys.stderr.write(f"greenq: {reason}\n")
    return code


def _given(**values: Any) -> dict[str, Any]:
    """The command-line values that were given (they override the environment)."""
    return {key: value for key, value in values.items() if value is not None}


def _only(settings: AnyPollerSettings, names: list[str] | None) -> AnyPollerSettings:
    """``settings`` narrowed to the named instances (all of them when ``names`` is empty)."""
    if not names:
        return settings
    return settings.model_copy(update={"instances": [_pick(settings, name) for name in names]})


def _run_show(args: argparse.Namespace) -> int:
    from greenq.pull import admin

    return _with_api(args, lambda api: admin.show(api, sys.stdout))


def _run_configure(args: argparse.Namespace) -> int:
    from greenq.pull import admin

    try:
        plan = admin.ConfigurePlan(
            mode="push" if args.push else "pull",
            webhook_url=args.push or "",
            enable=admin.parse_switches(args.enable),
            disable=admin.parse_switches(args.disable),
            env_file=args.env_file,
        )
    except ValueError as error:
        return _refused(error)
    if plan.mode == "push" and not plan.webhook_url.startswith(("https://", "http://")):
        return _refused("--push needs an http(s) URL")
    return _with_api(args, lambda api: admin.configure(api, plan, sys.stdout))


def _with_api(args: argparse.Namespace, action: Callable[[GreenApiClient], Awaitable[None]]) -> int:
    from greenq.core.greenapi.process import configure_api_logging

    settings = _load_settings({})
    configure_api_logging(settings)
    try:
        instance = _pick(settings, args.instance)
    except UnknownInstance as error:
        return _refused(error)
    try:
        asyncio.run(_call(settings, instance, action))
    except (PollerError, ApiError) as error:
        return _refused(error, code=1)
    return 0


async def _call(
    settings: PollerSettings,
    instance: InstanceConfig,
    action: Callable[[GreenApiClient], Awaitable[None]],
) -> None:
    async with httpx2.AsyncClient() as http:
        await action(GreenApiClient(http, instance, settings.poll_request_timeout))


def _load_settings(overrides: dict[str, Any]) -> PollerSettings:
    """Settings from the environment and ``.env``, with command-line values on top."""
    return PollerSettings(**overrides)


def _pick(settings: PollerSettings, name: str | None) -> InstanceConfig:
    """The named instance, or the only one when no name is given."""
    names = ", ".join(instance.name for instance in settings.instances)
    if name is None:
        if len(settings.instances) == 1:
            return settings.instances[0]
        raise UnknownInstance(f"several instances are configured, choose one with --instance: {names}")
    try:
        return settings.instance(name)
    except KeyError:
        raise UnknownInstance(f"no instance {name!r} in GREENQ_INSTANCES (configured: {names})") from None
