"""GREEN API instances (``GREENQ_INSTANCES``): where each API is and the token it takes."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from greenq.core.settings.common import CommonSettings
from greenq.core.settings.parsing import refuse_unusable_secret

#: Instance names appear in logs, metric labels, job envelopes and GREENQ_TOKENS, so they stay plain.
INSTANCE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

#: Characters an apiTokenInstance may hold: it is a URL path segment, so nothing that changes the URL.
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


class InstanceConfig(BaseModel):
    """One GREEN API instance: where its API is and how to authenticate (the token stays a secret)."""

    model_config = ConfigDict(
        frozen=True, validate_by_name=True, validate_by_alias=True, hide_input_in_errors=True, extra="forbid"
    )

    name: str = Field(pattern=INSTANCE_NAME_PATTERN, description="Label in logs, metrics and jobs.")
    api_url: str = Field(alias="apiUrl", description="apiUrl from the GREEN API console.")
    id_instance: str = Field(alias="idInstance", pattern=r"^[0-9]{1,20}$")
    api_token: SecretStr = Field(alias="apiTokenInstance")

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, value: Any) -> Any:
        """An instance without a name is called by its idInstance."""
        if isinstance(value, dict) and not value.get("name"):
            id_instance = value.get("idInstance", value.get("id_instance"))
            if id_instance is not None:
                return {**value, "name": str(id_instance)}
        return value

    @field_validator("id_instance", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("api_url")
    @classmethod
    def _check_api_url(cls, value: str) -> str:
        url = value.strip().rstrip("/")
        if not url.startswith(("http://", "https://")) or any(ch.isspace() for ch in url):
            raise ValueError(f"apiUrl must be an http(s) URL, got {url!r}")
        return url

    @model_validator(mode="after")
    def _check_token(self) -> InstanceConfig:
        refuse_unusable_secret(
            self.api_token.get_secret_value(),
            _TOKEN_CHARS,
            placeholder=f"apiTokenInstance of instance {self.name!r} is empty or a placeholder",
            bad_characters=f"apiTokenInstance of instance {self.name!r} has characters not allowed in a "
            "URL path (value not shown)",
        )
        return self


def parse_instances(value: object) -> object:
    """``name=apiUrl|idInstance|apiTokenInstance`` items (comma-separated) or a JSON list of objects.

    Error messages name the item's position, never its text, since the text holds a token.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"GREENQ_INSTANCES is not valid JSON ({error.msg} at char {error.pos})"
            ) from None
    items = filter(None, (part.strip() for part in text.split(",")))
    return [_instance_item(position, item) for position, item in enumerate(items, start=1)]


def _instance_item(position: int, item: str) -> dict[str, str]:
    """One ``name=apiUrl|idInstance|apiTokenInstance`` item as the fields of :class:`InstanceConfig`."""
    name, sep, rest = item.partition("=")
    parts = rest.split("|")
    if not sep or len(parts) != 3:
        raise ValueError(
            f"GREENQ_INSTANCES item {position} must be name=apiUrl|idInstance|apiTokenInstance "
            "(value not shown)"
        )
    api_url, id_instance, token = (part.strip() for part in parts)
    return {"name": name.strip(), "apiUrl": api_url, "idInstance": id_instance, "apiTokenInstance": token}


class InstancesSettings(CommonSettings):
    """``GREENQ_INSTANCES``, as every process that calls GREEN API reads it (poller, reconciler, sender)."""

    instances: Annotated[list[InstanceConfig], NoDecode] = Field(
        min_length=1, description="GREEN API instances to call (GREENQ_INSTANCES)."
    )

    @field_validator("instances", mode="before")
    @classmethod
    def _parse_instances(cls, value: Any) -> Any:
        return parse_instances(value)

    @model_validator(mode="after")
    def _check_instances(self) -> InstancesSettings:
        names = [instance.name for instance in self.instances]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"instance names must be unique, repeated: {', '.join(duplicates)}")
        return self

    def instance(self, name: str) -> InstanceConfig:
        """The configured instance called ``name`` (KeyError when there is none)."""
        for instance in self.instances:
            if instance.name == name:
                return instance
        raise KeyError(name)
