"""The typed reader of BACKUPS_CLOUDS_FILE: one TOML table per cloud, each checked before any run starts."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import pydantic
from pydantic_core import PydanticCustomError

CLOUD_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
# The one cloud of a setup without a clouds file, and the cloud of every row a warehouse held before clouds.
DEFAULT_CLOUD = "default"
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Field names that can only mean a key written into the file (compared lower-cased, '-' read as '_').
SECRET_FIELDS = frozenset({"key", "api_key", "apikey", "password", "token", "secret"})
# tomllib (3.11) puts the position only in its message: "<problem> (at line L, column C)".
_TOML_ERROR = re.compile(r"(?P<problem>.*) \(at (?P<where>line \d+, column \d+|end of document)\)", re.DOTALL)
_DECLARED_TWICE = re.compile(r"Cannot declare \('clouds', '(?P<name>[^']*)'\) twice")
# These two tomllib messages end with the offending character from the file: it could belong to a key.
_QUOTES_A_CHARACTER = ("Illegal character", "Found invalid character")


@dataclass(frozen=True)
class CloudSpec:
    """One control panel: where it is and who logs in; the key stays in the variable named by key_env."""

    name: str
    url: str
    user: str
    key_env: str
    api_format: str
    max_concurrency: int | None


class CloudsFileError(ValueError):
    """A clouds file the job cannot use; one line starting with "BACKUPS_CLOUDS_FILE=<path>: ", never a value."""


def _check_url(url: str) -> str:
    # Messages name the problem only: the URL may carry a token and must not reach a log.
    if any(ch.isspace() for ch in url):
        raise PydanticCustomError("url", "must not contain whitespace")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise PydanticCustomError("url", "not a well-formed URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PydanticCustomError("url", "not an http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        raise PydanticCustomError("url", "carries credentials: put the user in user and the key in key_env's variable")
    if parts.query or parts.fragment:
        raise PydanticCustomError("url", "must not carry a query or fragment (a token there would end up in logs)")
    return url.rstrip("/")


def _fold_format(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


class _CloudModel(pydantic.BaseModel):
    # strict: TOML is typed, so "8" or true for max_concurrency is a mistake rather than something to coerce.
    model_config = pydantic.ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True, frozen=True)

    url: str = pydantic.Field(min_length=1)
    user: str = pydantic.Field(min_length=1)
    key_env: str = pydantic.Field(pattern=rf"^{ENV_NAME.pattern}$")
    format: Literal["json", "xml"] = "json"
    max_concurrency: int | None = pydantic.Field(default=None, ge=1, le=256)

    _url = pydantic.field_validator("url")(_check_url)
    _format = pydantic.field_validator("format", mode="before")(_fold_format)


def read_clouds_file(path: str | Path, environ: Mapping[str, str]) -> tuple[CloudSpec, ...]:
    """The clouds the file names, sorted by name; CloudsFileError naming the cloud and field of the first problem."""
    prefix = f"BACKUPS_CLOUDS_FILE={path}: "
    try:
        clouds = _clouds_table(_parse(Path(path)))
        _check_names(clouds)
        specs = [_spec(name, fields, environ) for name, fields in clouds.items()]
    except _Problem as problem:
        raise CloudsFileError(prefix + str(problem)) from None
    return tuple(sorted(specs, key=lambda spec: spec.name))


def asset_safe(name: str) -> str:
    """The cloud name as Dagster asset keys and resource keys allow it ('-' becomes '_')."""
    return name.replace("-", "_")


class _Problem(Exception):
    """A problem without the path; read_clouds_file adds it."""


def _parse(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise _Problem(f"cannot read the file: {error.strerror or type(error).__name__}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        # The decoder's own message quotes the bytes; the offset is enough to find them.
        raise _Problem(f"not UTF-8 text (byte {error.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _Problem(_toml_problem(str(error))) from None


def _toml_problem(message: str) -> str:
    found = _TOML_ERROR.fullmatch(message)
    if found is None:
        return "not valid TOML"
    problem, where = found["problem"], found["where"]
    twice = _DECLARED_TWICE.fullmatch(problem)
    if twice:
        return f"cloud {twice['name']!r} is declared twice (at {where})"
    if problem.startswith(_QUOTES_A_CHARACTER):
        problem = problem.rsplit(" ", 1)[0]
    return f"not valid TOML: {problem} (at {where})"


def _clouds_table(document: dict[str, Any]) -> dict[str, Any]:
    for key in document:
        if key != "clouds":
            raise _Problem(f"unknown top-level key {key!r}: the file holds only [clouds.<name>] tables")
    clouds = document.get("clouds", {})
    if not isinstance(clouds, dict):
        raise _Problem("clouds must be a table of [clouds.<name>] tables")
    if not clouds:
        raise _Problem("no clouds: add at least one [clouds.<name>] table")
    return clouds


def _check_names(clouds: Mapping[str, Any]) -> None:
    safe: dict[str, str] = {}
    for name in clouds:
        if not CLOUD_NAME.fullmatch(name):
            raise _Problem(f"cloud name {name!r} does not match {CLOUD_NAME.pattern}")
        other = safe.setdefault(asset_safe(name), name)
        if other != name:
            # Both would own the same asset and resource keys.
            raise _Problem(f"clouds {other!r} and {name!r} both become {asset_safe(name)!r} in asset keys")


def _spec(name: str, fields: Any, environ: Mapping[str, str]) -> CloudSpec:
    where = f"cloud {name!r}"
    if not isinstance(fields, dict):
        raise _Problem(f"{where}: must be a table of fields ([clouds.{name}])")
    for field in fields:
        if field.lower().replace("-", "_") in SECRET_FIELDS:
            raise _Problem(f"{where}: field {field!r} holds a key: put it in an environment variable "
                           "and name that variable in key_env")
    try:
        model = _CloudModel.model_validate(fields)
    except pydantic.ValidationError as error:
        raise _Problem(f"{where}: {_first_error(error)}") from None
    if not (environ.get(model.key_env) or "").strip():
        raise _Problem(f"{where}: key_env: {model.key_env} is not set")
    return CloudSpec(name=name, url=model.url, user=model.user, key_env=model.key_env,
                     api_format=model.format, max_concurrency=model.max_concurrency)


def _first_error(error: pydantic.ValidationError) -> str:
    # An unknown field first: a misspelt `usr` explains the "user: Field required" that comes with it.
    details = sorted(error.errors(include_input=False, include_url=False),
                     key=lambda detail: detail["type"] != "extra_forbidden")
    detail = details[0]
    field = ".".join(str(part) for part in detail["loc"])
    if detail["type"] == "extra_forbidden":
        return f"unknown field {field!r}"
    return f"{field}: {detail['msg']}"
