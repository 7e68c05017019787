"""Every Redis key, queue name and job path greenq uses, defined once.

The ingress and the workers import these names; nothing else spells a key.
"""

from __future__ import annotations

import hashlib
from typing import Final

#: Prefix of every key greenq writes (RQ's own keys keep their ``rq:`` prefix).
PREFIX: Final = "greenq"

#: The RQ queue that carries notification batches from ingress/poller to workers.
QUEUE_NAME: Final = "greenq-notifications"

#: RQ's set of the workers registered for the queue (RQ writes it; greenq's metrics count it).
WORKERS_SET: Final = f"rq:workers:{QUEUE_NAME}"

#: Import path of the RQ job function; the ingress enqueues it by name and never imports worker code.
JOB_FUNCTION: Final = "greenq.workers.jobs.process_batch"

#: Import path of the RQ job that drains one ordered-mode partition (its argument: the partition number).
DRAIN_FUNCTION: Final = "greenq.workers.jobs.drain_partition"

#: Redis Stream holding dead letters (invalid, failed, unknown_type notifications), newest last.
DEAD_LETTER_STREAM: Final = f"{PREFIX}:deadletter"

#: Prefix of the per-typeWebhook Redis Streams written by the built-in stream sink.
EVENT_STREAM_PREFIX: Final = f"{PREFIX}:events:"


#: Prefix of the deduplication markers (one short-lived key per notification identity).
DEDUP_PREFIX: Final = f"{PREFIX}:dedup:"


def dedup_key(digest: str) -> str:
    """Marker key of one notification identity (``digest`` is a hash of its identifying fields)."""
    return f"{DEDUP_PREFIX}{digest}"


#: Prefix of exactly-once claims: one short-lived key per unit of work (a delivery, retry attempt or replay)
#: that committed without a content identity, written in the same transaction as the unit's effects.
CLAIM_PREFIX: Final = f"{PREFIX}:claim:"

#: Prefix of the short-lived lock a ``greenq dlq replay`` takes on one dead letter before replaying it.
REPLAY_LOCK_PREFIX: Final = f"{PREFIX}:replaying:"


def claim_key(unit: str) -> str:
    """Claim key of one unit of work (``unit`` is a digest of request id, attempt, source, replay origin)."""
    return f"{CLAIM_PREFIX}{unit}"


def replay_lock_key(entry_id: str) -> str:
    """Lock key of one dead-letter entry while a replay moves it back to the queue."""
    return f"{REPLAY_LOCK_PREFIX}{entry_id}"


def event_stream(type_webhook: str) -> str:
    """Name of the stream sink's stream for one typeWebhook."""
    return f"{EVENT_STREAM_PREFIX}{type_webhook}"


#: Hash of final-outcome counts (field = outcome, value = count since the key was created): the workers
#: increment it with each final outcome, ``greenq status`` reads it.
OUTCOME_COUNTS: Final = f"{PREFIX}:outcomes"

#: A short-lived key a worker writes to learn whether Redis takes writes again (a full Redis answers PING).
WRITE_PROBE: Final = f"{PREFIX}:write-probe"

#: Prefix of the markers ``greenq reconcile`` sets on the notifications it enqueued (one per dedup identity),
#: so a later run does not enqueue them again before a worker has processed them.
RECONCILED_PREFIX: Final = f"{PREFIX}:reconciled:"


def reconciled_key(digest: str) -> str:
    """Marker of a notification the reconciler enqueued (``digest`` is its dedup identity)."""
    return f"{RECONCILED_PREFIX}{digest}"


# Ordered mode. Every key of partition ``n`` carries the hash tag ``{pn}``, so all of one partition lives in
# one cluster slot and no Redis command or transaction ever touches two partitions. Per partition: the stream
# of accepted envelopes (read by one drain at a time, in a consumer group), the drain's *scheduled* flag (a
# ``drain_partition`` job is queued or running), its *lease* (the running drain), the *held* hash (chat key
# -> when its parked head may be retried) and one *parked* list per held chat (its failed notification
# first, then every later notification of that chat, in order).

#: Consumer group and (single) consumer name of every partition stream: one drain reads a partition.
DRAIN_GROUP: Final = "greenq-drain"
DRAIN_CONSUMER: Final = "drain"


def _partition_tag(partition: int) -> str:
    return f"{PREFIX}:{{p{partition}}}"


def partition_stream_key(partition: int) -> str:
    return f"{_partition_tag(partition)}:stream"


def partition_scheduled_key(partition: int) -> str:
    return f"{_partition_tag(partition)}:scheduled"


def partition_retry_key(partition: int) -> str:
    """Set while a delayed drain for the partition's held chats is queued (one at a time)."""
    return f"{_partition_tag(partition)}:retry"


def partition_held_key(partition: int) -> str:
    return f"{_partition_tag(partition)}:held"


def _chat_digest(chat: str) -> str:
    return hashlib.blake2b(chat.encode(errors="surrogatepass"), digest_size=10).hexdigest()


def partition_parked_key(partition: int, chat: str) -> str:
    return f"{_partition_tag(partition)}:parked:{_chat_digest(chat)}"


def partition_lease_key(partition: int) -> str:
    return f"{_partition_tag(partition)}:lease"


#: Prefix of the per-chat state documents (``ctx.state``) as releases before ordered-by-default kept them,
#: and as jobs-mode workers of the release that introduced ordered mode still did (read as a fallback).
CHAT_STATE_PREFIX: Final = f"{PREFIX}:state:"


def legacy_chat_state_key(key: str) -> str:
    """The older, partition-less key of the chat whose state lives at ``key`` (same digest)."""
    return f"{CHAT_STATE_PREFIX}{key.rsplit(':', 1)[-1]}"


def chat_state_key(chat: str, partition: int | None) -> str:
    """Key of one chat's state document (``chat`` is its partition chat key). Workers keep it in its chat's
    partition (``partition``) in either ordering mode, so a drain's transaction never spans two partitions
    and workers of both modes share one document; ``None``: the older key (:func:`legacy_chat_state_key`)."""
    if partition is None:
        return f"{CHAT_STATE_PREFIX}{_chat_digest(chat)}"
    return f"{_partition_tag(partition)}:state:{_chat_digest(chat)}"


#: Prefix of the per-(chat, sender) state documents (``ctx.sender_state``) in jobs mode.
SENDER_STATE_PREFIX: Final = f"{PREFIX}:sender-state:"


def sender_state_key(chat: str, sender: str, partition: int | None) -> str:
    """Key of one sender's state document in one chat (a group member's own conversation); like
    :func:`chat_state_key`, inside its chat's partition in ordered mode."""
    digest = _chat_digest(f"{chat}\x1f{sender}")
    if partition is None:
        return f"{SENDER_STATE_PREFIX}{digest}"
    return f"{_partition_tag(partition)}:sender-state:{digest}"


# Outbox (README: Writing a bot). Entries live in the partition of the notification whose handler asked for
# them (its hash tag, like every partition key), in both ordering modes; the sender holds one lease per
# outbox stream. Reply records and the idMessage index are per message, not per partition.

#: Consumer group and (single) consumer name of every outbox stream: one sender at a time reads a stream.
SEND_GROUP: Final = "greenq-send"
SEND_CONSUMER: Final = "sender"


def outbox_stream_key(partition: int) -> str:
    return f"{_partition_tag(partition)}:outbox"


def outbox_lease_key(partition: int) -> str:
    """Held by the sender that delivers the partition's outbox (renewed while it runs)."""
    return f"{_partition_tag(partition)}:outbox-lease"


#: Prefix of the reply records: one per outbox entry (``greenq.core.outbox.ReplyRecord``).
REPLY_PREFIX: Final = f"{PREFIX}:reply:"

#: Prefix of the index from a sent message's idMessage to its outbox entry id (for outgoingMessageStatus).
REPLY_ID_PREFIX: Final = f"{PREFIX}:reply-id:"

#: Prefix of the per-instance send pacing keys (the earliest time the next call may go out).
SEND_NEXT_PREFIX: Final = f"{PREFIX}:send-next:"


def reply_key(entry_id: str) -> str:
    return f"{REPLY_PREFIX}{entry_id}"


def reply_id_key(id_message: str) -> str:
    return f"{REPLY_ID_PREFIX}{id_message}"


def send_next_key(instance: str) -> str:
    return f"{SEND_NEXT_PREFIX}{instance}"


#: Prefix of the per-instance log of the send slots granted (ms timestamps, newest first, capped): what the
#: pacing actually allowed, for operators and tests.
SEND_SLOTS_PREFIX: Final = f"{PREFIX}:send-slots:"

#: Sorted set of live sender replicas (member: replica id, score: ms time its heartbeat expires); each
#: replica takes its fair share of the outbox partitions.
SENDERS_KEY: Final = f"{PREFIX}:senders"


def send_slots_key(instance: str) -> str:
    return f"{SEND_SLOTS_PREFIX}{instance}"
