# greenq image: one image, two roles. `greenq ingress` (default) or `greenq worker`.
#
#   docker build -t greenq:0.1.0 .
#
# No `# syntax=` line: it would make BuildKit fetch a Dockerfile frontend from Docker Hub; everything here
# works with the builder the engine ships (BuildKit or the classic one).

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- builder: greenq and its dependencies, at the versions CI tests (constraints.txt), in a venv -----------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# Dependencies first, in their own layer: a code change does not reinstall them.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && /opt/venv/bin/pip install -c constraints.txt -r /tmp/requirements.txt
# The whole context (see .dockerignore): the wheel takes the packages pyproject.toml lists.
COPY . .
RUN /opt/venv/bin/pip install -c constraints.txt . \
 && /opt/venv/bin/python -c "import greenq.cli.main"

# --- runtime: the venv only; no compiler, no sources, no pip cache -----------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 greenq \
 && useradd --system --uid 10001 --gid greenq --home-dir /app --no-create-home --shell /usr/sbin/nologin greenq \
 && mkdir -p /app \
 && chown greenq:greenq /app
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GREENQ_HOST=0.0.0.0 \
    GREENQ_PORT=8080 \
    GREENQ_METRICS_HOST=0.0.0.0 \
    GREENQ_METRICS_PORT=9100
WORKDIR /app
USER 10001:10001
EXPOSE 8080 9100
# Liveness of the default role (ingress). The worker overrides it (compose, k8s) with its /metrics port.
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GREENQ_PORT', '8080'), timeout=3)"]
CMD ["greenq", "ingress"]
