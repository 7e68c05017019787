"""Putting a webhook token into ``GREENQ_TOKENS`` of a ``.env`` file, so the ingress accepts it.

The file is rewritten atomically and left readable by its owner only (0600); other lines stay as they were.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Final

TOKENS_VARIABLE: Final = "GREENQ_TOKENS"


def set_ingress_token(path: Path, name: str, token: str) -> None:
    """Add or replace the ``name=token`` entry of GREENQ_TOKENS in the env file at ``path``."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    found = False
    updated: list[str] = []
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key.strip().removeprefix("export ").strip() == TOKENS_VARIABLE:
            updated.append(f"{key}={with_token(value, name, token)}")
            found = True
        else:
            updated.append(line)
    if not found:
        updated.append(f"{TOKENS_VARIABLE}={with_token('', name, token)}")
    _write_private(path, "\n".join(updated) + "\n")


def with_token(value: str, name: str, token: str) -> str:
    """A GREENQ_TOKENS value (any form the ingress reads) with ``name`` set to ``token``."""
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    else:
        text = text.split(" #", 1)[0].strip()  # an unquoted value ends at a comment, as dotenv reads it
    if text.startswith("{"):
        tokens = {str(key): str(val) for key, val in json.loads(text).items()}
        tokens[name] = token
        return "'" + json.dumps(tokens, separators=(",", ":")) + "'"
    if not text:
        return f"{name}={token}"
    if "=" not in text:
        text = f"default={text}"  # a bare token is the one the ingress calls "default"
    items = [item.strip() for item in text.split(",") if item.strip()]
    kept = [item for item in items if item.partition("=")[0].strip() != name]
    return ",".join([*kept, f"{name}={token}"])


def _write_private(path: Path, content: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
