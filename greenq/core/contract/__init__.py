"""The job contract between the producers (ingress, poller, reconcile, replay) and the workers, in one place.

Import it from here. One module per concern, each changing for its own reasons: :mod:`.envelope` is the
wire format (what a notification looks like in Redis, every version a worker must still read) and needs
neither RQ nor Redis; :mod:`.queue` is the RQ side (the one queue, every job's options, turning envelopes
into jobs, on a pipeline or not); :mod:`.partitioned` is ordered mode's side (an envelope appended to its
chat's partition stream, a drain scheduled); :mod:`.producer` chooses between the two for the producers
that are not the ingress (poller, reconcile, dead-letter replay). The names of the queue, the job
functions and every Redis key stay in :mod:`greenq.core.keys`, spelled once.
"""

from greenq.core.contract.envelope import (
    BINARY_ENVELOPE_VERSION,
    ENVELOPE_FIELD,
    ENVELOPE_VERSION,
    READABLE_VERSIONS,
    BodyEncoding,
    Envelope,
    EnvelopeError,
    Source,
    batch_to_wire,
    decode_wire,
)
from greenq.core.contract.partitioned import PartitionedQueue
from greenq.core.contract.producer import ProducerQueue, producer_queue
from greenq.core.contract.queue import (
    DEFAULT_JOB_TIMEOUT,
    FAILURE_TTL,
    JOB_RETRIES,
    JOB_RETRY_INTERVALS,
    SERIALIZER,
    Enqueued,
    JobsQueue,
    NotificationQueue,
    notification_queue,
)

__all__ = [
    "BINARY_ENVELOPE_VERSION",
    "DEFAULT_JOB_TIMEOUT",
    "ENVELOPE_FIELD",
    "ENVELOPE_VERSION",
    "FAILURE_TTL",
    "JOB_RETRIES",
    "JOB_RETRY_INTERVALS",
    "READABLE_VERSIONS",
    "SERIALIZER",
    "BodyEncoding",
    "Enqueued",
    "Envelope",
    "EnvelopeError",
    "JobsQueue",
    "NotificationQueue",
    "PartitionedQueue",
    "ProducerQueue",
    "Source",
    "batch_to_wire",
    "decode_wire",
    "notification_queue",
    "producer_queue",
]
