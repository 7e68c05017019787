# Stand-in for python:3.11-slim-bookworm: Debian bookworm's python3 (3.11) with venv support and a `python`.
# host-ca.pem is the host's CA bundle, copied in by the test at build time (never committed): pip inside the
# project's build then trusts whatever TLS proxy the host trusts.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python-is-python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY host-ca.pem /etc/ssl/certs/host-ca.pem
ENV PIP_CERT=/etc/ssl/certs/host-ca.pem \
    SSL_CERT_FILE=/etc/ssl/certs/host-ca.pem
