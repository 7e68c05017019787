"""Redis keys as JSON: dump what a process wrote, restore it byte for byte in another Redis.

The rolling-upgrade fixtures (``tests/fixtures/previous-release/``) were dumped this way from a Redis that
the previous release's ingress wrote to; the test restores them as they were. A value is a string when it
is UTF-8, else ``{"base64": ...}``. Strings, hashes, lists, sets and streams are supported.
"""

from __future__ import annotations

import base64
from typing import Any, cast

from redis import Redis

Value = str | dict[str, str]


def encode(raw: bytes) -> Value:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(raw).decode()}


def decode(value: Value) -> bytes:
    return base64.b64decode(value["base64"]) if isinstance(value, dict) else value.encode()


def _mapping(raw: dict[bytes, bytes]) -> dict[str, Value]:
    return {field.decode(): encode(value) for field, value in sorted(raw.items())}


def dump_keys(redis: Redis) -> dict[str, dict[str, Any]]:
    """Every key of ``redis``: its type, value and TTL in seconds (-1: none)."""
    dumped: dict[str, dict[str, Any]] = {}
    for key in sorted(cast(list[bytes], redis.keys("*"))):
        kind = cast(bytes, redis.type(key)).decode()
        ttl = redis.ttl(key)
        dumped[key.decode()] = {"type": kind, "value": _read(redis, key, kind), "ttl": ttl}
    return dumped


def _read(redis: Redis, key: bytes, kind: str) -> Any:
    if kind == "string":
        return encode(cast(bytes, redis.get(key)))
    if kind == "hash":
        return _mapping(cast(dict[bytes, bytes], redis.hgetall(key)))
    if kind == "list":
        return [encode(item) for item in cast(list[bytes], redis.lrange(key, 0, -1))]
    if kind == "set":
        return sorted((encode(item) for item in cast(set[bytes], redis.smembers(key))), key=str)
    if kind == "stream":
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], redis.xrange(key))
        return [[entry_id.decode(), _mapping(fields)] for entry_id, fields in entries]
    raise ValueError(f"cannot dump a Redis {kind}")


def restore_keys(redis: Redis, dumped: dict[str, dict[str, Any]]) -> None:
    """Write ``dumped`` (from :func:`dump_keys`) into ``redis``, replacing those keys."""
    with redis.pipeline(transaction=True) as pipe:
        for key, entry in dumped.items():
            pipe.delete(key)
            _restore(pipe, key, entry["type"], entry["value"])
            if entry["ttl"] > 0:
                pipe.expire(key, entry["ttl"])
        pipe.execute()


def _restore(pipe: Any, key: str, kind: str, value: Any) -> None:
    if kind == "string":
        pipe.set(key, decode(value))
    elif kind == "hash":
        pipe.hset(key, mapping={field: decode(item) for field, item in value.items()})
    elif kind == "list":
        pipe.rpush(key, *(decode(item) for item in value))
    elif kind == "set":
        pipe.sadd(key, *(decode(item) for item in value))
    elif kind == "stream":
        for entry_id, fields in value:
            pipe.xadd(key, {field: decode(item) for field, item in fields.items()}, id=entry_id)
    else:
        raise ValueError(f"cannot restore a Redis {kind}")
