"""The container image: a multi-stage Dockerfile on pinned bases, a non-root final stage with a health
check, and a .dockerignore that keeps secrets out of the build context."""

from __future__ import annotations

import re

from tests.support.deploy_files import DOCKERFILE, ROOT


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(index for index, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def test_dockerfile_is_multi_stage_on_pinned_bases() -> None:
    instructions = dockerfile_instructions()
    arguments = dict(arg.split("=", 1) for op, arg in instructions if op == "ARG" and "=" in arg)
    bases = [
        re.sub(r"\$\{(\w+)\}", lambda m: arguments[m.group(1)], arg.split()[0])
        for op, arg in instructions
        if op == "FROM"
    ]

    assert len(bases) >= 2
    for base in bases:
        assert ":" in base, f"{base} has no tag"
        assert base.rpartition(":")[2] != "latest", base
    assert bases[-1].startswith("python:3.11")
    assert "slim" in bases[-1]


def test_dockerfile_final_stage_runs_non_root_with_a_healthcheck() -> None:
    stage = final_stage()
    users = [arg for op, arg in stage if op == "USER"]

    assert users, "the final stage sets no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert any(op == "HEALTHCHECK" and "/healthz" in arg for op, arg in stage)
    assert ("CMD", '["greenq", "ingress"]') in stage
    assert not any(op == "RUN" and re.search(r"apt-get install|pip install|gcc", arg) for op, arg in stage)


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build_context() -> None:
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()]

    assert {".env", ".env.*", ".git/", ".venv/"} <= set(rules)
    assert not any(rule.startswith("!") for rule in rules), "a re-include could bring a secret back"
