"""The clouds file is read into typed specs, and every mistake stops with one line that names it and no value."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.clouds.config import (CLOUD_NAME, DEFAULT_CLOUD, CloudsFileError, CloudSpec, asset_safe,
                                    read_clouds_file)
from tests.conftest import ROOT

ENV = {"ONAPP_EU_KEY": "key-of-eu", "ONAPP_US_KEY": "key-of-us"}
EU = '[clouds.eu]\nurl = "https://cp-eu.example.com"\nuser = "admin@example.com"\nkey_env = "ONAPP_EU_KEY"\n'
# Looks like a credential; no error message may ever repeat it.
SECRET = "s3cr3t-T0KEN-9f8e7d"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "clouds.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problem(path: Path, environ=ENV) -> str:
    """The message after the path prefix, once checked to be one line."""
    with pytest.raises(CloudsFileError) as raised:
        read_clouds_file(path, environ)
    message = str(raised.value)
    prefix = f"BACKUPS_CLOUDS_FILE={path}: "
    assert message.startswith(prefix) and "\n" not in message
    return message.removeprefix(prefix)


def eu_with(extra: str, drop: str | None = None) -> str:
    """The eu cloud with some lines added and one field left out."""
    lines = [line for line in EU.splitlines() if drop is None or not line.startswith(f"{drop} ")]
    return "\n".join(lines) + "\n" + extra + "\n"


def test_a_good_file_gives_the_clouds_sorted_by_name(tmp_path):
    path = write(tmp_path, '[clouds.us]\nurl = "https://cp-us.example.com/"\nuser = "ops"\nkey_env = "ONAPP_US_KEY"\n'
                           'format = "XML"\nmax_concurrency = 8\n' + EU)
    assert read_clouds_file(str(path), ENV) == (
        CloudSpec(name="eu", url="https://cp-eu.example.com", user="admin@example.com", key_env="ONAPP_EU_KEY",
                  api_format="json", max_concurrency=None),
        CloudSpec(name="us", url="https://cp-us.example.com", user="ops", key_env="ONAPP_US_KEY",
                  api_format="xml", max_concurrency=8),
    )


def test_a_spec_never_holds_the_key_itself(tmp_path):
    (spec,) = read_clouds_file(write(tmp_path, EU), ENV)
    assert ENV["ONAPP_EU_KEY"] not in repr(spec)


def test_the_default_cloud_name_is_itself_a_valid_name():
    assert CLOUD_NAME.fullmatch(DEFAULT_CLOUD)


def test_a_missing_file_is_named_with_the_reason(tmp_path):
    assert problem(tmp_path / "clouds.toml") == "cannot read the file: No such file or directory"


def test_an_unreadable_file_is_named_with_the_reason(tmp_path):
    assert problem(tmp_path) == "cannot read the file: Is a directory"


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "clouds.toml"
    path.write_bytes(EU.encode() + b'# caf\xe9\n')
    assert problem(path) == f"not UTF-8 text (byte {len(EU) + 5})"


def test_a_toml_syntax_error_gives_the_line_and_column(tmp_path):
    assert problem(write(tmp_path, EU + "max_concurrency = \n")) == "not valid TOML: Invalid value (at line 5, column 19)"


def test_a_cloud_declared_twice_is_named_with_the_line(tmp_path):
    path = write(tmp_path, EU + '[clouds.us]\nuser = "x"\n' + EU)
    assert problem(path) == "cloud 'eu' is declared twice (at line 7, column 11)"


def test_an_unknown_top_level_key_is_named(tmp_path):
    assert problem(write(tmp_path, 'retries = 3\n' + EU)).startswith("unknown top-level key 'retries'")
    assert problem(write(tmp_path, EU + '[defaults]\nformat = "xml"\n')).startswith("unknown top-level key 'defaults'")


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "[clouds]\n"])
def test_a_file_without_clouds_is_refused(tmp_path, text):
    assert problem(write(tmp_path, text)).startswith("no clouds")


def test_clouds_must_be_a_table(tmp_path):
    assert problem(write(tmp_path, 'clouds = ["eu"]\n')).startswith("clouds must be a table")


def test_a_cloud_must_be_a_table(tmp_path):
    assert problem(write(tmp_path, '[clouds]\neu = "https://cp-eu.example.com"\n')).startswith("cloud 'eu': must be a table")


@pytest.mark.parametrize("name", ["EU", "-eu", "_eu", "eu.1", "eu 1", "", "é"])
def test_a_bad_cloud_name_is_shown_with_the_rule(tmp_path, name):
    text = EU.replace("[clouds.eu]", f'[clouds."{name}"]')
    assert problem(write(tmp_path, text)) == f"cloud name {name!r} does not match {CLOUD_NAME.pattern}"


def test_names_that_share_an_asset_key_are_refused(tmp_path):
    text = EU.replace("clouds.eu", "clouds.eu-1") + EU.replace("clouds.eu", "clouds.eu_1")
    assert problem(write(tmp_path, text)) == "clouds 'eu-1' and 'eu_1' both become 'eu_1' in asset keys"


def test_an_unknown_field_is_named_with_its_cloud(tmp_path):
    path = write(tmp_path, eu_with('colour = "blue"'))
    with pytest.raises(CloudsFileError) as raised:
        read_clouds_file(path, ENV)
    assert str(raised.value) == f"BACKUPS_CLOUDS_FILE={path}: cloud 'eu': unknown field 'colour'"


def test_a_misspelt_field_is_named_before_the_field_it_leaves_missing(tmp_path):
    assert problem(write(tmp_path, eu_with('usr = "ops"', drop="user"))) == "cloud 'eu': unknown field 'usr'"


@pytest.mark.parametrize("field", ["url", "user", "key_env"])
def test_a_required_field_left_out_is_named(tmp_path, field):
    assert problem(write(tmp_path, eu_with("", drop=field))) == f"cloud 'eu': {field}: Field required"


@pytest.mark.parametrize(("field", "value"), [
    ("url", '"ftp://cp-eu.example.com"'),
    ("url", '"cp-eu.example.com"'),
    ("url", '"https://"'),
    ("url", '"https://admin:pass@cp-eu.example.com"'),
    ("url", '"https://admin@cp-eu.example.com"'),
    ("url", '"https://cp-eu.example.com/?token=abc"'),
    ("url", '"https://cp-eu.example.com:port"'),
    ("url", '"https://cp eu.example.com"'),
    ("url", "443"),
    ("user", '""'),
    ("user", '"   "'),
    ("key_env", '"ONAPP-EU-KEY"'),
    ("key_env", '"1KEY"'),
    ("key_env", '""'),
    ("format", '"yaml"'),
    ("format", "1"),
    ("max_concurrency", "0"),
    ("max_concurrency", "257"),
    ("max_concurrency", '"8"'),
    ("max_concurrency", "8.0"),
    ("max_concurrency", "true"),
])
def test_a_wrong_value_is_named_with_its_cloud_and_field(tmp_path, field, value):
    assert problem(write(tmp_path, eu_with(f"{field} = {value}", drop=field))).startswith(f"cloud 'eu': {field}: ")


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("format", '"Xml"', "xml"),
    ("format", '"JSON"', "json"),
    ("max_concurrency", "1", 1),
    ("max_concurrency", "256", 256),
    ("url", '"http://10.0.0.5:8080/onapp/"', "http://10.0.0.5:8080/onapp"),
])
def test_values_at_the_edges_are_accepted(tmp_path, field, value, expected):
    (spec,) = read_clouds_file(write(tmp_path, eu_with(f"{field} = {value}", drop=field)), ENV)
    assert getattr(spec, {"format": "api_format"}.get(field, field)) == expected


@pytest.mark.parametrize("field", ["key", "api_key", "password", "apikey", "token", "secret", "API_KEY", "Api-Key"])
def test_a_key_written_into_the_file_is_refused_without_showing_it(tmp_path, field):
    message = problem(write(tmp_path, eu_with(f'"{field}" = "{SECRET}"')))
    assert message == (f"cloud 'eu': field {field!r} holds a key: "
                       "put it in an environment variable and name that variable in key_env")


@pytest.mark.parametrize("environ", [{}, {"ONAPP_EU_KEY": ""}, {"ONAPP_EU_KEY": "  "}, {"onapp_eu_key": "k"}])
def test_a_key_variable_missing_or_empty_is_named(tmp_path, environ):
    assert problem(write(tmp_path, EU), environ) == "cloud 'eu': key_env: ONAPP_EU_KEY is not set"


@pytest.mark.parametrize("text", [
    # The secret in every field at once, then in each field alone, down every path that refuses a file.
    f'[clouds.eu]\nurl = "https://{SECRET}@cp.example.com"\nuser = "{SECRET}"\nkey_env = "{SECRET}"\n'
    f'format = "{SECRET}"\nmax_concurrency = "{SECRET}"\ncolour = "{SECRET}"\napi_key = "{SECRET}"\n',
    eu_with(f'url = "https://admin:{SECRET}@cp.example.com"', drop="url"),
    eu_with(f'url = "https://cp.example.com/?token={SECRET}"', drop="url"),
    eu_with(f'url = "https://cp.example.com#{SECRET}"', drop="url"),
    eu_with(f'url = "{SECRET}://cp.example.com"', drop="url"),
    eu_with(f'url = "https://cp.example.com:{SECRET}"', drop="url"),
    eu_with(f'url = "https://[{SECRET}"', drop="url"),
    eu_with(f'url = "https://cp.example.com/ {SECRET}"', drop="url"),
    eu_with(f'user = ["{SECRET}"]', drop="user"),
    eu_with(f'key_env = "{SECRET}"', drop="key_env"),
    eu_with(f'format = "{SECRET}"'),
    eu_with(f'max_concurrency = "{SECRET}"'),
    eu_with(f'colour = "{SECRET}"'),
    eu_with(f'token = "{SECRET}"'),
    eu_with(f'url = "{SECRET}'),
    f'[clouds]\neu = "{SECRET}"\n',
    f'clouds = "{SECRET}"\n',
    f'extra = "{SECRET}"\n' + EU,
    EU + f'url = "{SECRET}"\n',
])
def test_no_message_repeats_a_value_from_the_file(tmp_path, text):
    assert SECRET not in problem(write(tmp_path, text))


def test_no_message_repeats_a_character_that_toml_refuses(tmp_path):
    # tomllib quotes an illegal character; inside a key it is a piece of the secret.
    message = problem(write(tmp_path, eu_with('api_key = "ab\x01cd"')))
    assert message == "not valid TOML: Illegal character (at line 5, column 14)"


def test_no_message_repeats_the_key_from_the_environment(tmp_path):
    text = eu_with('max_concurrency = 0')
    assert ENV["ONAPP_EU_KEY"] not in problem(write(tmp_path, text))


def test_asset_safe_turns_dashes_into_underscores():
    assert asset_safe("eu-west-1") == "eu_west_1"
    assert asset_safe("eu_1") == "eu_1"


@given(st.from_regex(CLOUD_NAME, fullmatch=True))
def test_every_cloud_name_makes_a_valid_dagster_key(name):
    assert re.fullmatch(r"[A-Za-z0-9_]+", asset_safe(name))


def test_the_reader_imports_no_dagster_and_no_wiring():
    # pipeline.defs.settings imports this module: importing Dagster or the wiring back would make a cycle.
    code = ("import sys, pipeline.clouds.config; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dagster' or m.startswith('pipeline.defs')))")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert shown.stdout.strip() == "[]"
