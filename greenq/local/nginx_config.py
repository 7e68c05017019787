"""Render the nginx edge config (load balancing, limits, rate limiting) from one template.

The same template serves two topologies:

* **compose** (``resolver`` given): one upstream ``server ingress:8080 resolve`` that nginx >= 1.27.3
  re-resolves through Docker's DNS, so replicas added with ``docker compose up --scale ingress=N`` join
  the pool without a reload. The committed ``deploy/nginx/nginx.conf`` is this rendering.
* **static** (``resolver`` is None): fixed ``host:port`` servers, for nginx builds without ``resolve``
  (Debian's 1.22) and for the tests.

Regenerate the committed file with
``python -m greenq.local.nginx_config --compose > deploy/nginx/nginx.conf``.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Final

from greenq.core.settings import DEFAULT_BODY_CAP_BYTES, OVER_CAP_PATH

#: GREEN API's published webhook source addresses (union of the lists on its docs sites, see
#: shared/greenapi.md section 4). They are exempt from the per-client rate limit; advisory, configurable.
GREEN_API_SOURCE_IPS: Final = (
    "46.101.109.139",
    "51.250.12.167",
    "51.250.68.181",
    "51.250.69.45",
    "51.250.69.65",
    "51.250.74.200",
    "51.250.76.115",
    "51.250.84.44",
    "51.250.87.205",
    "51.250.89.177",
    "51.250.91.13",
    "51.250.93.251",
    "51.250.94.65",
    "51.250.95.149",
    "64.226.111.11",
    "64.226.125.75",
    "89.169.137.216",
    "104.248.252.93",
    "158.160.49.84",
    "158.160.139.176",
    "165.22.93.202",
    "167.172.162.71",
    "207.154.255.195",
    "209.38.202.24",
)

DEFAULT_WEBHOOK_PATH: Final = "/green-api/webhook/"
DEFAULT_RATE_PER_SECOND: Final = 20
DEFAULT_BURST: Final = 40

#: Docker's embedded DNS server, reachable from every container on a user-defined network.
DOCKER_RESOLVER: Final = "127.0.0.11"
#: How long nginx trusts a DNS answer: a scaled-up replica receives traffic within this delay.
RESOLVER_VALID: Final = "5s"

#: Writable directory inside the nginx container (a tmpfs; the root filesystem is read-only).
CONTAINER_TMP: Final = "/tmp"  # noqa: S108 (a container-private tmpfs, not a shared host /tmp)

#: Passive health: one failed attempt takes a server out of rotation for ``fail_timeout``.
SERVER_FAILURE_PARAMS: Final = "max_fails=1 fail_timeout=10s"

TEMPLATE_NAME: Final = "nginx.conf.tmpl"

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
#: A value spliced into a directive: no whitespace, quotes, comments or block/statement delimiters.
_SAFE_TOKEN = re.compile(r"^[^\s;{}\"'#\\$]+$")


class NginxConfigError(ValueError):
    """A rendering parameter would produce an invalid or unsafe nginx config."""


@dataclass(frozen=True, slots=True)
class TlsListener:
    """An extra ``listen ... ssl`` socket on the same server, with its certificate files."""

    listen: str
    certificate: str
    certificate_key: str


def render_nginx_config(
    *,
    listen: str,
    upstreams: Sequence[str],
    resolver: str | None,
    body_cap_bytes: int,
    rate_per_second: int,
    burst: int,
    exempt_cidrs: Sequence[str],
    access_log: str,
    error_log: str,
    pid_file: str,
    temp_dir: str,
    webhook_path: str = DEFAULT_WEBHOOK_PATH,
    trusted_proxies: Sequence[str] = (),
    tls: TlsListener | None = None,
    worker_user: str | None = None,
) -> str:
    """The nginx.conf text for these parameters.

    ``upstreams`` are ``host:port`` ingress addresses; with ``resolver`` set they are DNS names resolved
    continuously (``resolve``), otherwise fixed servers. ``exempt_cidrs`` skip the rate limit;
    ``trusted_proxies`` are load balancers in front of nginx whose X-Forwarded-For is believed.
    ``worker_user`` is set only when the master runs as root and its workers must be able to write the
    temp directories (nginx otherwise drops them to ``nobody``, and bodies over 64 KiB fail with 500).
    """
    _refuse_unusable(upstreams, body_cap_bytes, rate_per_second, burst, webhook_path)
    for value in (listen, *upstreams, access_log, error_log, pid_file, temp_dir, webhook_path):
        _check_token(value)
    values = {
        **_file_values(pid_file, error_log, access_log, temp_dir),
        **_limit_values(body_cap_bytes, rate_per_second, burst, webhook_path),
        "real_ip": _real_ip_block(trusted_proxies),
        **_topology_values(resolver, upstreams),
        "exempt_entries": "\n".join(f"{_network(cidr)} 0;" for cidr in exempt_cidrs),
        "listen_directives": _listen_block(listen, tls),
        "worker_user": _worker_user_block(worker_user),
    }
    return _filled_template(values)


def render_compose_config() -> str:
    """The rendering committed as ``deploy/nginx/nginx.conf`` and mounted by docker-compose.yml."""
    return render_nginx_config(
        listen="8080",
        upstreams=["ingress:8080"],
        resolver=DOCKER_RESOLVER,
        body_cap_bytes=DEFAULT_BODY_CAP_BYTES,
        rate_per_second=DEFAULT_RATE_PER_SECOND,
        burst=DEFAULT_BURST,
        exempt_cidrs=GREEN_API_SOURCE_IPS,
        access_log="/dev/stdout",
        error_log="/dev/stderr",
        pid_file=f"{CONTAINER_TMP}/nginx.pid",
        temp_dir=CONTAINER_TMP,
    )


def _refuse_unusable(
    upstreams: Sequence[str], body_cap_bytes: int, rate_per_second: int, burst: int, webhook_path: str
) -> None:
    """Raise for values nginx would refuse or that leave it nothing to do."""
    if not upstreams:
        raise NginxConfigError("at least one upstream host:port is required")
    if body_cap_bytes < 1 or rate_per_second < 1 or burst < 1:
        raise NginxConfigError(
            f"need body_cap_bytes, rate_per_second and burst >= 1 (nginx refuses burst=0); "
            f"got {body_cap_bytes!r}, {rate_per_second!r}, {burst!r}"
        )
    if not webhook_path.startswith("/"):
        raise NginxConfigError(f"webhook_path must start with '/', got {webhook_path!r}")


def _check_token(value: str) -> None:
    if not _SAFE_TOKEN.match(value):
        raise NginxConfigError(f"unsafe value for an nginx directive: {value!r}")


def _file_values(pid_file: str, error_log: str, access_log: str, temp_dir: str) -> dict[str, str]:
    """Where nginx writes."""
    return {
        "pid_file": pid_file,
        "error_log": error_log,
        "access_log": access_log,
        "temp_dir": temp_dir.rstrip("/") or "/",
    }


def _limit_values(body_cap_bytes: int, rate_per_second: int, burst: int, webhook_path: str) -> dict[str, str]:
    """The webhook location and the limits on it."""
    return {
        "body_cap_bytes": str(body_cap_bytes),
        "rate_per_second": str(rate_per_second),
        "burst": str(burst),
        "webhook_path": webhook_path,
        "over_cap_path": OVER_CAP_PATH,
    }


def _topology_values(resolver: str | None, upstreams: Sequence[str]) -> dict[str, str]:
    """Compose (DNS names nginx re-resolves) or static (fixed servers)."""
    server_suffix = f" resolve {SERVER_FAILURE_PARAMS}" if resolver else f" {SERVER_FAILURE_PARAMS}"
    return {
        "topology": "compose (DNS-resolved upstream)" if resolver else "static",
        "resolver": _resolver_block(resolver),
        "upstream_servers": "\n".join(f"server {address}{server_suffix};" for address in upstreams),
    }


def _network(cidr: str) -> str:
    try:
        return str(ipaddress.ip_network(cidr, strict=False))
    except ValueError as error:
        raise NginxConfigError(f"not an IP address or CIDR: {cidr!r}") from error


def _worker_user_block(worker_user: str | None) -> str:
    if worker_user is None:
        return ""
    _check_token(worker_user)
    return f"user {worker_user};"


def _real_ip_block(trusted_proxies: Sequence[str]) -> str:
    if not trusted_proxies:
        return ""
    lines = [f"set_real_ip_from {_network(cidr)};" for cidr in trusted_proxies]
    return "\n".join([*lines, "real_ip_header X-Forwarded-For;", "real_ip_recursive on;"])


def _resolver_block(resolver: str | None) -> str:
    if resolver is None:
        return ""
    _check_token(resolver)
    return f"resolver {resolver} valid={RESOLVER_VALID} ipv6=off;\nresolver_timeout 2s;"


def _listen_block(listen: str, tls: TlsListener | None) -> str:
    lines = [f"listen {listen};"]
    if tls is not None:
        for value in (tls.listen, tls.certificate, tls.certificate_key):
            _check_token(value)
        lines += [
            f"listen {tls.listen} ssl;",
            f"ssl_certificate {tls.certificate};",
            f"ssl_certificate_key {tls.certificate_key};",
            "ssl_protocols TLSv1.2 TLSv1.3;",
            "ssl_session_cache shared:greenq_tls:10m;",
        ]
    return "\n".join(lines)


def _filled_template(values: dict[str, str]) -> str:
    """Fill ``{{ name }}`` placeholders; a placeholder alone on a line takes a block, indented like it."""
    template = (resources.files("greenq.local") / "templates" / TEMPLATE_NAME).read_text(encoding="utf-8")
    out: list[str] = []
    for line in template.splitlines():
        names = _PLACEHOLDER.findall(line)
        unknown = [name for name in names if name not in values]
        if unknown:
            raise NginxConfigError(f"template uses unknown placeholders {unknown!r}")
        block = _PLACEHOLDER.fullmatch(line.strip())
        if block:
            indent = line[: len(line) - len(line.lstrip())]
            out += [f"{indent}{part}" for part in values[block.group(1)].splitlines()]
            continue
        out.append(_PLACEHOLDER.sub(lambda match: values[match.group(1)], line))
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m greenq.local.nginx_config --compose`` or a static config for a local nginx."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--compose", action="store_true", help="the docker-compose rendering")
    parser.add_argument("--listen", default="127.0.0.1:8000")
    parser.add_argument("--upstream", action="append", default=[], help="host:port (repeat)")
    parser.add_argument("--runtime-dir", help="directory for the pid file, temp files and logs (static)")
    parser.add_argument("--body-cap-bytes", type=int, default=DEFAULT_BODY_CAP_BYTES)
    parser.add_argument("--rate", type=int, default=DEFAULT_RATE_PER_SECOND)
    parser.add_argument("--burst", type=int, default=DEFAULT_BURST)
    args = parser.parse_args(argv)
    if args.compose:
        sys.stdout.write(render_compose_config())
        return 0
    if not args.runtime_dir:
        parser.error("--runtime-dir is required without --compose")
    runtime = str(args.runtime_dir).rstrip("/")
    sys.stdout.write(
        render_nginx_config(
            listen=args.listen,
            upstreams=args.upstream or ["127.0.0.1:8080"],
            resolver=None,
            body_cap_bytes=args.body_cap_bytes,
            rate_per_second=args.rate,
            burst=args.burst,
            exempt_cidrs=GREEN_API_SOURCE_IPS,
            access_log=f"{runtime}/nginx-access.log",
            error_log=f"{runtime}/nginx-error.log",
            pid_file=f"{runtime}/nginx.pid",
            temp_dir=runtime,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
