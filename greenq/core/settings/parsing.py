"""How settings text becomes values: comma-separated lists, networks, webhook tokens, ordered pairs.

Shared by the settings classes so that each rule (and each error message) is written once.
"""

from __future__ import annotations

import ipaddress
import json

from pydantic import BaseModel, SecretStr

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Placeholder values refused as tokens, so an example file cannot go to production unchanged.
PLACEHOLDER_TOKENS = frozenset(
    {"change-me", "changeme", "secret", "token", "xxx", "", "replace-with-a-long-random-token"}
)

#: What a webhook token may hold: printable ASCII. Anything else arrives decoded as latin-1, never matching.
_HEADER_TOKEN_CHARS = frozenset(chr(code) for code in range(0x20, 0x7F))

_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def split_csv(value: object) -> object:
    """Turn ``"a, b"`` into ``["a", "b"]``; JSON-looking text and lists pass through unchanged."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def parse_networks(value: object) -> object:
    """Comma-separated text to a list; IPv4-mapped IPv6 entries (``::ffff:10.0.0.1``) folded to IPv4.

    The ingress folds a mapped client address to IPv4 before matching, so a mapped entry kept as IPv6
    would never match anything.
    """
    items = split_csv(value)
    if not isinstance(items, list):
        return items
    return [_fold_mapped(item) for item in items]


def _fold_mapped(item: object) -> object:
    text = str(item).strip() if isinstance(item, str | IPNetwork) else None
    if text is None or ":" not in text:
        return item
    try:
        network = ipaddress.IPv6Network(text, strict=False)
    except ValueError:
        return item  # pydantic reports it with the field's name
    if network.prefixlen < 96 or not network.subnet_of(_IPV4_MAPPED):
        return item
    mapped = network.network_address.ipv4_mapped
    return ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}", strict=False)


def parse_tokens(value: object) -> dict[str, SecretStr]:
    """Tokens as ``name=token`` pairs (comma-separated), a JSON object, or one bare token named ``default``.

    The name is what logs, metrics and jobs carry; the token itself never leaves this object.
    """
    pairs = _token_pairs(value)
    for name, token in pairs.items():
        refuse_unusable_secret(
            token,
            _HEADER_TOKEN_CHARS,
            placeholder=f"token {name!r} is empty or a placeholder; set a real secret",
            bad_characters=f"token {name!r} has characters an Authorization header cannot carry as sent "
            "(only printable ASCII; headers arrive as latin-1), so it could never match (value not shown)",
        )
    return {name: SecretStr(token) for name, token in pairs.items()}


def _token_pairs(value: object) -> dict[str, str]:
    """Name -> token text, from any of the forms :func:`parse_tokens` accepts."""
    if isinstance(value, dict):
        return {
            str(k): str(v.get_secret_value() if isinstance(v, SecretStr) else v) for k, v in value.items()
        }
    if not isinstance(value, str):
        raise ValueError(f"tokens must be text or a mapping, got {type(value).__name__}")
    text = value.strip()
    if text.startswith("{"):
        return {str(k): str(v) for k, v in json.loads(text).items()}
    if text and "=" not in text:
        return {"default": text}
    pairs = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, token = item.partition("=")
        if not sep or not name.strip():
            raise ValueError("each GREENQ_TOKENS item must be name=token (value not shown)")
        pairs[name.strip()] = token.strip()
    return pairs


def refuse_unusable_secret(
    token: str, allowed: frozenset[str], *, placeholder: str, bad_characters: str
) -> None:
    """Refuse an example token (error ``placeholder``) and one that could never be sent as is.

    The messages are the caller's, so that they name the setting; neither ever contains the token.
    """
    if token.lower() in PLACEHOLDER_TOKENS:
        raise ValueError(placeholder)
    if not set(token) <= allowed:
        raise ValueError(bad_characters)


def require_at_least(settings: BaseModel, larger: str, smaller: str) -> None:
    """Refuse settings whose field ``larger`` is below ``smaller`` (a cap under its base, say)."""
    if getattr(settings, larger) < getattr(settings, smaller):
        raise ValueError(f"GREENQ_{larger.upper()} must be >= GREENQ_{smaller.upper()}")
