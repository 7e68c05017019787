"""What the compose test needs from outside, made from Debian packages only (Docker Hub is out of reach).

- compose v2: Debian bookworm has no compose v2 package and PyPI's ``docker-compose`` is the retired v1, so
  the plugin comes from Debian trixie's ``docker-compose`` .deb, fetched with the host's apt against a
  private package list (the host's own apt configuration is not touched) and unpacked with ``dpkg-deb``.
- base images: ``debootstrap --variant=minbase`` from the mirror the host's apt uses, imported into the
  engine; bookworm for Python, redis and prometheus, sid for nginx (``server ... resolve`` needs >= 1.27.3).
- stand-ins for the upstream images, built from ``tests/compose/standins/*.Dockerfile``. Each carries a
  label with a hash of its inputs, so a cached engine rebuilds only what changed.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.compose.engine import DockerEngine

HERE = Path(__file__).parent
STANDIN_DIR = HERE / "standins"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
COMPOSE_SUITE = "trixie"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
HASH_LABEL = "greenq.standin.inputs"


@dataclass(frozen=True)
class StandIn:
    """One stand-in image: the tag the override file uses, its Dockerfile and the Debian suite under it."""

    tag: str
    dockerfile: str
    suite: str


STANDINS = (
    StandIn("greenq-standin/python:3.11-bookworm", "python.Dockerfile", "bookworm"),
    StandIn("greenq-standin/redis:bookworm", "redis.Dockerfile", "bookworm"),
    StandIn("greenq-standin/prometheus:bookworm", "prometheus.Dockerfile", "bookworm"),
    StandIn("greenq-standin/nginx:sid", "nginx.Dockerfile", "sid"),
)


def run(args: list[str], timeout: float, **kwargs: object) -> str:
    """Run a command; on failure raise with the end of its output (the test's error message)."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
        raise RuntimeError(f"{' '.join(args[:4])} ... exited {result.returncode}:\n{tail}")
    return str(result.stdout)


def debian_mirror() -> str:
    """The Debian archive the host's apt uses (deb822 ``URIs:`` or a ``deb`` line), else Debian's own."""
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    sources += [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for path in (p for p in sources if p.exists()):
        for url in re.findall(r"(?:^URIs:|^deb)\s+(\S+)", path.read_text(), flags=re.MULTILINE):
            if url.rstrip("/").endswith("/debian"):
                return str(url)
    return DEFAULT_MIRROR


def compose_plugin(docker_config: Path) -> Path:
    """``docker compose`` (v2) installed as a CLI plugin under ``docker_config``; kept between runs."""
    plugin = docker_config / "cli-plugins" / "docker-compose"
    if plugin.exists():
        return plugin
    with tempfile.TemporaryDirectory(prefix="gqc-apt-") as scratch:
        root = Path(scratch)
        (root / "lists" / "partial").mkdir(parents=True)
        (root / "sources.list").write_text(f"deb {debian_mirror()} {COMPOSE_SUITE} main\n")
        options = [
            f"-oDir::Etc::SourceList={root / 'sources.list'}",
            "-oDir::Etc::SourceParts=/nonexistent",
            f"-oDir::State::Lists={root / 'lists'}",
            f"-oDir::Cache={root / 'cache'}",
            "-oAcquire::Check-Valid-Until=false",
            "-oAPT::Sandbox::User=root",
        ]
        run(["apt-get", *options, "update"], timeout=300)
        run(["apt-get", *options, "download", "docker-compose"], timeout=300, cwd=root)
        (deb,) = root.glob("docker-compose_*.deb")
        run(["dpkg-deb", "-x", str(deb), str(root / "unpacked")], timeout=120)
        plugin.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / "unpacked/usr/libexec/docker/cli-plugins/docker-compose", plugin)
    return plugin


def base_tag(suite: str) -> str:
    return f"greenq-standin/debian:{suite}"


def base_image(engine: DockerEngine, suite: str, scratch: Path) -> str:
    """A minimal Debian ``suite`` image, made with debootstrap unless the engine already has it."""
    tag = base_tag(suite)
    if engine.docker("image", "inspect", tag).returncode == 0:
        return tag
    rootfs = scratch / f"rootfs-{suite}"
    run(["debootstrap", "--variant=minbase", suite, str(rootfs), debian_mirror()], timeout=600)
    with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
        run(["docker", "import", "-", tag], timeout=300, stdin=tar.stdout, env=engine.env)
    shutil.rmtree(rootfs)
    return tag


def inputs_hash(standin: StandIn, base_id: str) -> str:
    """What a stand-in is made of: its Dockerfile, its base image and (Python only) the host's CA bundle."""
    digest = hashlib.sha256((STANDIN_DIR / standin.dockerfile).read_bytes() + base_id.encode())
    if "python" in standin.tag:
        digest.update(HOST_CA_BUNDLE.read_bytes())
    return digest.hexdigest()[:16]


def build_standin(engine: DockerEngine, standin: StandIn, scratch: Path) -> str:
    """Build one stand-in unless the engine has it with the same inputs; ``built`` or ``cached``."""
    base_id = engine.docker("image", "inspect", "--format", "{{.Id}}", base_tag(standin.suite)).stdout
    wanted = inputs_hash(standin, base_id.strip())
    label = engine.docker(
        "image", "inspect", "--format", f'{{{{index .Config.Labels "{HASH_LABEL}"}}}}', standin.tag
    )
    if label.returncode == 0 and label.stdout.strip() == wanted:
        return "cached"
    context = scratch / f"context-{standin.dockerfile}"
    context.mkdir()
    # The host's CA bundle goes into the build context at run time (it is never committed): pip in the
    # project's build then trusts what the host trusts, a TLS-intercepting proxy included.
    shutil.copy(HOST_CA_BUNDLE, context / "host-ca.pem")
    args = ["docker", "build", "--quiet", "--file", str(STANDIN_DIR / standin.dockerfile)]
    args += ["--build-arg", f"BASE={base_tag(standin.suite)}", "--label", f"{HASH_LABEL}={wanted}"]
    run([*args, "--tag", standin.tag, str(context)], timeout=600, env={**engine.env, "DOCKER_BUILDKIT": "0"})
    return "built"


def prepare_standins(engine: DockerEngine, scratch: Path) -> dict[str, str]:
    """Base images (debootstraps in parallel), then the stand-ins (in parallel): tag -> what happened."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda suite: base_image(engine, suite, scratch), {s.suite for s in STANDINS}))
        outcomes = list(pool.map(lambda standin: build_standin(engine, standin, scratch), STANDINS))
    return {standin.tag: outcome for standin, outcome in zip(STANDINS, outcomes, strict=True)}
