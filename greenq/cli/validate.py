"""``greenq validate``: check notification files with exactly the schemas the workers use."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

import orjson

from greenq.core.notification import unwrap
from greenq.workers.validation import NotificationValidator, Verdict


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``greenq validate``."""
    validate = commands.add_parser(
        "validate", help="validate notification JSON files with the worker schemas"
    )
    validate.add_argument("files", nargs="+", type=Path)
    validate.set_defaults(run=_run_validate)


def _run_validate(args: argparse.Namespace) -> int:
    return 0 if validate_files(args.files, sys.stdout) else 1


def validate_file(validator: NotificationValidator, path: Path) -> Verdict:
    """The verdict for one file (a notification or a pull-API ``{receiptId, body}`` wrapper)."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as error:
        return Verdict(status="invalid", type_webhook=None, type_message=None, errors=(str(error),))
    return validator.validate(unwrap(data))


def validate_files(paths: Iterable[Path], out: TextIO) -> bool:
    """Print each file's type or its errors; True when every file is valid."""
    validator = NotificationValidator()
    all_valid = True
    for path in paths:
        verdict = validate_file(validator, path)
        kind = "/".join(part for part in (verdict.type_webhook, verdict.type_message) if part) or "-"
        if verdict.status == "valid":
            out.write(f"{path}: valid {kind}\n")
            continue
        all_valid = False
        out.write(f"{path}: {verdict.status} {kind}\n")
        for error in verdict.errors:
            out.write(f"  - {error}\n")
    return all_valid
