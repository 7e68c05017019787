"""The README against the code it describes: settings, metrics, alerts and every ``greenq`` command line.

A README read after many merges drifts silently (a default changed in code only, a flag renamed, a metric
documented that nothing exports); these checks read the real objects, never a copy of their names.
"""

from __future__ import annotations

import argparse
import re
import runpy
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from prometheus_client import CollectorRegistry
from pydantic_core import PydanticUndefined

from greenq.cli import main as cli
from greenq.core.contract import Envelope
from greenq.core.notification import Notification
from greenq.core.settings import (
    CommonSettings,
    IngressSettings,
    PollerSettings,
    ReconcileSettings,
    SenderSettings,
    WorkerSettings,
)
from greenq.pull.metrics import PollerMetrics
from tests.support.deploy_files import exported_series

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
SETTINGS_CLASSES = (
    CommonSettings,
    IngressSettings,
    WorkerSettings,
    PollerSettings,
    ReconcileSettings,
    SenderSettings,
)
#: Written by `greenq ingress` for its own uvicorn processes; not something an operator sets.
INTERNAL_VARIABLES = frozenset({"GREENQ_METRICS_DIR"})


def section(title: str) -> str:
    """The README text from the heading ``title`` to the next heading of the same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(title)}\n", README, re.MULTILINE)
    assert match, title
    level = len(match.group(1))
    rest = README[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


# --- settings ---------------------------------------------------------------------------------------------


def documented_settings() -> dict[str, str]:
    """``GREENQ_*`` name -> documented default, from the Settings table (``A`` / ``_B`` rows split)."""
    documented: dict[str, str] = {}
    for row in section("Settings").splitlines():
        if not row.startswith("| `GREENQ_"):
            continue
        name_cell, default_cell = re.split(r"(?<!\\)\|", row)[1:3]
        names = re.findall(r"`(GREENQ_[A-Z_]+|_[A-Z]+)`", name_cell)
        full = [name if name.startswith("GREENQ_") else names[0].rsplit("_", 1)[0] + name for name in names]
        defaults = re.findall(r"`([^`]*)`", default_cell) or [default_cell.strip()]
        for position, name in enumerate(full):
            documented[name] = defaults[min(position, len(defaults) - 1)]
    return documented


def code_settings() -> dict[str, Any]:
    """``GREENQ_*`` name -> the default the settings classes apply (PydanticUndefined when required)."""
    defaults: dict[str, Any] = {}
    for settings in SETTINGS_CLASSES:
        for name, field in settings.model_fields.items():
            defaults[f"GREENQ_{name.upper()}"] = field.get_default(call_default_factory=True)
    return defaults


def same_default(documented: str, actual: Any) -> bool:
    if actual is PydanticUndefined or actual is None or actual in ({}, []):
        return documented.startswith(("(", "none"))  # "(required)", "(empty)", "none (required ...)"
    if isinstance(actual, bool):
        return documented == str(actual).lower()
    if isinstance(actual, list):
        return [float(part) for part in documented.split(",")] == actual
    if isinstance(actual, int | float):
        return float(documented) == actual
    return bool(documented == actual)


def test_the_settings_table_names_every_variable_the_code_reads_and_nothing_else() -> None:
    documented, actual = set(documented_settings()), set(code_settings()) - INTERNAL_VARIABLES
    assert sorted(actual - documented) == [], "read by greenq.core.settings but not in the README's table"
    assert sorted(documented - actual) == [], "in the README's table but read by no settings class"
    for name in INTERNAL_VARIABLES:
        assert f"`{name}`" in section("Settings"), f"{name} is read: say that it is internal"


def test_the_settings_table_gives_each_variables_real_default() -> None:
    actual = code_settings()
    wrong = {
        name: (text, actual[name])
        for name, text in documented_settings().items()
        if not same_default(text, actual[name])
    }
    assert wrong == {}


def test_the_table_parser_sees_every_row() -> None:
    """Guards the two tests above: a table the parser could not read would compare nothing."""
    rows = [line for line in section("Settings").splitlines() if line.startswith("| `GREENQ_")]
    assert len(rows) >= 35
    assert documented_settings()["GREENQ_POLL_BACKOFF_CAP"] == "30"


# --- metrics and alerts ----------------------------------------------------------------------------------


def all_exported_series() -> frozenset[str]:
    registry = CollectorRegistry()
    PollerMetrics.create(registry, ["first"]).paused.labels(instance="first").set(0)
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    poller = {family.name + suffix for family in registry.collect() for suffix in suffixes[family.type]}
    return exported_series() | poller


def documented_metrics() -> set[str]:
    """Metric names the README mentions; ``_x`` shorthands after a full name complete its prefix."""
    names: set[str] = set()
    for cell in re.findall(r"`(greenq_[a-z_]+(?:\{[^`]*\})?)`((?:,? ?`_[a-z_]+(?:\{[^`]*\})?`)*)", README):
        first = cell[0].split("{")[0]
        names.add(first)
        prefix = re.match(r"greenq_[a-z]+", first)
        assert prefix
        names.update(prefix.group(0) + short.split("{")[0] for short in re.findall(r"`(_[a-z_]+)", cell[1]))
    return names


def exported_families() -> set[str]:
    series = all_exported_series()
    return {re.sub(r"_(bucket|count|sum)$", "", name) for name in series} | series


def test_every_metric_the_readme_names_is_exported() -> None:
    missing = sorted(name for name in documented_metrics() if name not in exported_families())
    assert missing == []


def test_every_exported_metric_is_documented() -> None:
    documented = documented_metrics()
    families = {re.sub(r"_(bucket|count|sum)$", "", name) for name in all_exported_series()}
    assert sorted(name for name in families if name not in documented) == []
    assert len(documented) >= 25  # the parser read the Observability lists


def alert_names() -> set[str]:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text(encoding="utf-8"))
    return {rule["alert"] for group in rules["groups"] for rule in group["rules"]}


def test_every_alert_the_readme_names_exists_and_every_alert_is_listed() -> None:
    named = set(re.findall(r"`(Greenq[A-Za-z]+)`", README))
    assert sorted(named - alert_names()) == [], "named in the README, not in alerts.yml"
    listed = set(re.findall(r"^\| `(Greenq[A-Za-z]+)` \|", section("Alerts"), re.MULTILINE))
    assert sorted(alert_names() - listed) == [], "in alerts.yml, missing from the README's alert table"


# --- command lines ------------------------------------------------------------------------------------------


def readme_command_lines() -> Iterator[str]:
    """Every ``greenq ...`` command the README shows, in code blocks and inline code."""
    for block in re.findall(r"```bash\n(.*?)```", README, re.DOTALL):
        for line in block.splitlines():
            command = line.split("#", 1)[0].strip()
            if re.match(r"(\.venv/bin/)?greenq ", command):
                yield command
    prose = re.sub(r"```.*?```", "", README, flags=re.DOTALL)
    for code in re.findall(r"`((?:\.venv/bin/)?greenq [^`]+)`", prose):
        yield " ".join(code.split())


def as_argv(command: str) -> list[str]:
    """The arguments after ``greenq``, with ``[--optional]`` brackets and ``NAME`` placeholders filled in."""
    text = re.sub(r"\[([^\]]*)\]", r"\1", command)
    argv = shlex.split(text)[1:]
    return [re.sub(r"^[A-Z_]+$", "1", arg) for arg in argv]


COMMANDS = sorted(set(readme_command_lines()))


def subcommands(parser: argparse.ArgumentParser) -> set[str]:
    actions = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return {name for action in actions for name in action.choices}


def test_the_readme_shows_the_operator_commands() -> None:
    verbs = {" ".join(as_argv(command)[:2]) for command in COMMANDS}
    assert {"status", "dlq list", "dlq show", "dlq replay", "dlq import-failed", "reconcile"} <= {
        verb if verb.startswith("dlq") else verb.split()[0] for verb in verbs
    }


def test_the_readme_shows_every_greenq_command() -> None:
    shown = {as_argv(command)[0] for command in COMMANDS}
    assert sorted(subcommands(cli._parser()) - shown) == []


@pytest.mark.parametrize("command", COMMANDS)
def test_every_readme_command_line_parses_with_the_real_parser(command: str) -> None:
    parser = cli._parser()
    argv = as_argv(command)
    if len(argv) == 1:  # a command named in prose (`greenq instance`): it must exist
        assert argv[0] in subcommands(parser)
        return
    parser.exit_on_error = False
    try:
        args = parser.parse_args(argv)
    except SystemExit as error:  # argparse exits on unknown flags even with exit_on_error=False
        pytest.fail(f"{command!r} does not parse (exit {error.code})")
    assert callable(args.run)


def test_scripts_up_options_are_greenq_up_flags() -> None:
    options = re.search(r"`scripts/up` options: (.*?)\(see", README, re.DOTALL)
    assert options
    argv = ["up"]
    for option in re.findall(r"`(--[a-z-]+(?: [^`]+)?)`", options.group(1)):
        argv += [re.sub(r"^[A-Z]+$", "1", part) for part in option.split()]
    cli._parser().parse_args(argv)
    up = next(
        action.choices["up"]
        for action in cli._parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    flags = {flag for action in up._actions for flag in action.option_strings} - {"-h", "--help", "--nginx"}
    assert sorted(flags - set(argv)) == [], "greenq up flags the README does not list"


# --- the handler example ----------------------------------------------------------------------------------


def test_the_handler_example_runs_and_routes_a_start_message(tmp_path: Path) -> None:
    """The README's handler module imports and its `text` filter picks `/start` from a documented sample."""
    [example] = re.findall(r"```python\n(# myapp/handlers.py.*?)```", README, re.DOTALL)
    module = tmp_path / "handlers.py"
    module.write_text(example, encoding="utf-8")
    router = runpy.run_path(str(module))["router"]
    sample = orjson.loads((ROOT / "tests/samples/incomingMessageReceived__textMessage.json").read_bytes())
    sample["messageData"]["textMessageData"]["textMessage"] = "/start please"
    envelope = Envelope(body="{}", source="webhook")
    notification = Notification(sample, sample["typeWebhook"], "textMessage", envelope)

    names = [route.name.rsplit(".", 1)[-1] for route in router.match(notification)]

    assert "greet" in names
    assert "track_status" not in names
    assert len(names) > 1, "router.include(default_router) keeps the built-in sink"


def _layout_rows() -> dict[str, int]:
    """Package -> floor, from the README's layout table."""
    rows = re.findall(r"^\| (\d) \| `([\w.]+)`", section("Layout"), re.MULTILINE)
    return {package: int(floor) for floor, package in rows}


def _declared_floors() -> dict[str, int]:
    """Package -> floor (1 = ground), from the import-linter layers contract in pyproject.toml."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = config["tool"]["importlinter"]["contracts"]
    layers: list[str] = contract["layers"]
    return {
        package.strip(): len(layers) - index
        for index, layer in enumerate(layers)
        for package in re.split(r"[|:]", layer)
    }


def test_the_layout_table_names_every_package_at_its_declared_floor() -> None:
    subpackages = {f"greenq.{path.parent.name}" for path in (ROOT / "greenq").glob("*/__init__.py")}
    assert set(_layout_rows()) == subpackages | {"bench"}
    assert _layout_rows() == _declared_floors()
