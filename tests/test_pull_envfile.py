"""greenq.pull.envfile: the ingress token that ``greenq instance configure --push`` makes is written into
the ingress's env file in every GREENQ_TOKENS form, keeping the other lines, file private."""

from __future__ import annotations

import stat
from pathlib import Path

from greenq.pull.envfile import set_ingress_token, with_token


def test_with_token_adds_or_replaces_an_entry_in_every_tokens_form() -> None:
    assert with_token("", "main", "T") == "main=T"
    assert with_token("a=1,main=old", "main", "T") == "a=1,main=T"
    assert with_token('"a=1"', "main", "T") == "a=1,main=T"
    assert with_token("bare-token", "main", "T") == "default=bare-token,main=T"
    assert with_token("a=1 # staging", "main", "T") == "a=1,main=T"
    assert with_token('{"a": "1"}', "main", "T") == '\'{"a":"1","main":"T"}\''


def test_set_ingress_token_keeps_other_lines_and_makes_the_file_private(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# mine\nGREENQ_LOG_LEVEL=DEBUG\nexport GREENQ_TOKENS=other=x1,main=old\n")
    env_file.chmod(0o644)

    set_ingress_token(env_file, "main", "new-token")
    set_ingress_token(tmp_path / "fresh.env", "main", "t2")

    assert (
        env_file.read_text()
        == "# mine\nGREENQ_LOG_LEVEL=DEBUG\nexport GREENQ_TOKENS=other=x1,main=new-token\n"
    )
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert (tmp_path / "fresh.env").read_text() == "GREENQ_TOKENS=main=t2\n"
    assert stat.S_IMODE((tmp_path / "fresh.env").stat().st_mode) == 0o600
