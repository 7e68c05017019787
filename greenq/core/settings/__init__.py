"""Typed settings, read once at start-up from ``GREENQ_*`` environment variables and optional env files.

Each process builds the one settings object it needs and passes it down; no module reads the environment
later. List-valued variables accept comma-separated text (``GREENQ_ALLOWED_IPS=1.2.3.4,10.0.0.0/8``).

One module per concern, each setting declared once: ``common`` (Redis, logging, ordering; the env
files), ``ingress``, ``worker`` (and the dedup window the reconciler shares), ``instances`` (GREEN API
instances), ``pull`` (poll and reconcile), ``sender`` (``greenq send``), ``limits`` (body sizes),
``parsing`` (list and token rules).
"""

from greenq.core.settings.common import ENV_FILES, UP_ENV_FILE, CommonSettings, MissingRedisUrl, Port
from greenq.core.settings.ingress import IngressSettings
from greenq.core.settings.instances import INSTANCE_NAME_PATTERN, InstanceConfig, parse_instances
from greenq.core.settings.limits import DEFAULT_BODY_CAP_BYTES, DEFAULT_MAX_BODY_BYTES, OVER_CAP_PATH
from greenq.core.settings.parsing import PLACEHOLDER_TOKENS, IPNetwork, parse_networks, parse_tokens
from greenq.core.settings.pull import JOURNAL_LAG_SECONDS, PollerSettings, ReconcileSettings
from greenq.core.settings.sender import SenderSettings
from greenq.core.settings.worker import DedupWindowSettings, WorkerSettings

__all__ = [
    "DEFAULT_BODY_CAP_BYTES",
    "DEFAULT_MAX_BODY_BYTES",
    "ENV_FILES",
    "INSTANCE_NAME_PATTERN",
    "JOURNAL_LAG_SECONDS",
    "OVER_CAP_PATH",
    "PLACEHOLDER_TOKENS",
    "UP_ENV_FILE",
    "CommonSettings",
    "DedupWindowSettings",
    "IPNetwork",
    "IngressSettings",
    "InstanceConfig",
    "MissingRedisUrl",
    "PollerSettings",
    "Port",
    "ReconcileSettings",
    "SenderSettings",
    "WorkerSettings",
    "parse_instances",
    "parse_networks",
    "parse_tokens",
]
