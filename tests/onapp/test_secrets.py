"""Secrets by any spelling never leave the client, and API text cannot forge a log line."""

from __future__ import annotations

import json

import pytest

from pipeline.onapp.escape import printable
from pipeline.onapp.secrets import body_snippet, is_secret_key, strip_secrets
from pipeline.records.reference import BACKUP_SERVER_FIELDS, USER_FIELDS, VM_FIELDS
from pipeline.records.schema import BACKUP_FIELDS, DERIVED_FIELDS
from tests.onapp.hostile_api import Crafted, json_list
from tests.onapp.test_bounds import backups_path, fetch

SECRET_KEYS = [
    "password", "apiKey", "api_key", "APIKey", "X-Api-Key", "privateKey", "private_key", "passphrase", "pwd", "pass",
    "ssh_keys", "sshKeys", "SSH-KEY", "otp_seed", "otpSecret", "initial_root_password", "remote_access_password",
    "Remote_Access_Password", "initial-root-password", "rootpassword", "ROOTPASSWORD", "credentials", "awsCredential",
    "auth_token", "accessToken", "tokens", "client_secret", "secretKey", "passwd", "db_pass", "keys", "Key",
]
# Words that contain a secret word without being one: it is the word that matters.
PLAIN_KEYS = ["monkey", "keyboard_layout", "bypass_cache", "compass", "passenger_count", "turnkey", "hotkeys",
              "donkeyId", "otpal", "pwdx", "keynote", "passage"]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_keys_by_any_spelling(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", PLAIN_KEYS)
def test_words_that_only_contain_a_secret_word_are_kept(key):
    assert not is_secret_key(key)


def test_every_declared_field_survives():
    declared = {k for c in BACKUP_FIELDS + DERIVED_FIELDS + VM_FIELDS + USER_FIELDS + BACKUP_SERVER_FIELDS
                for k in c.keys}
    assert {"iqn", "identifier", "operating_system", "operating_system_distro"} <= declared
    record = {key: 1 for key in declared}
    assert strip_secrets(record) == record


def test_secrets_go_at_any_depth_lists_included():
    record = {"id": 1, "apiKey": "k", "meta": {"sshKeys": ["a"], "hosts": [{"pwd": 1, "name": "h", "x": {"otp": 2}}]}}
    assert strip_secrets(record) == {"id": 1, "meta": {"hosts": [{"name": "h", "x": {}}]}}


@pytest.mark.parametrize("body", [
    b'{"errors": {"password": 12345678}}',                            # a number
    b'{"errors": {"apiKey": true, "n": 1}}',                           # a boolean
    b'{"errors": {"credentials": {"user": "u", "secret": "12345678"}}}',  # an object
    b'{"errors": {"ssh_keys": ["12345678", "x"]}}',                     # an array
    b'{"errors": {"pass\\u0077ord": "12345678"}}',                      # an escaped key
    b'{"errors": {"privateKey": "1234',                               # cut off
    b'<errors><initial-root-password type="integer">12345678</initial-root-password></errors>',
    b"<errors><otp_seed><![CDATA[12345678]]></otp_seed></errors>",
    b'<errors><user token="12345678" name="u"/></errors>',
])
def test_error_snippets_redact_secret_values_of_any_type(body):
    snippet = body_snippet(body)
    assert "1234" not in snippet and "[redacted]" in snippet


def test_error_snippets_keep_what_is_not_secret():
    assert body_snippet(b'{"errors": ["Keyboard not found"], "monkey": 5}') == \
        '{"errors": ["Keyboard not found"], "monkey": 5}'


@pytest.mark.parametrize("text", [
    "line one\nWARNING forged line", "\x1b[31mred\x1b[0m", "carriage\rreturn", "bidi \u202eevil", "nul\x00",
    "lone \ud800 surrogate", "tab\tand\x7fdel", "line\u2028separator",
])
def test_printable_escapes_what_could_forge_or_recolour_a_line(text):
    shown = printable(text)
    assert shown.isprintable() and shown.encode("utf-8")
    assert not any(char in shown for char in "\n\r\x1b\x00\u202e\u2028")


def test_printable_leaves_plain_text_and_cuts_to_the_limit():
    assert printable("Müller: 5 GB, 1–2 days") == "Müller: 5 GB, 1–2 days"
    assert printable("\n" * 100, 10) == "\\n" * 5


def test_no_secret_of_any_spelling_or_depth_leaves_the_client(hostile):
    api, client = hostile()
    secrets = {"apiKey": "sekrit-1", "privateKey": "sekrit-2", "passphrase": "sekrit-3", "pwd": "sekrit-4",
               "pass": "sekrit-5", "ssh_keys": ["sekrit-6"], "otp_seed": "sekrit-7"}
    record = {"id": 1, "backup_size": 1, "iqn": "iqn.2026-01.example:disk", **secrets,
              "nested": {"deeper": [{"initial_root_password": "sekrit-8", "monkey": "kept"}]}}
    api.answers[backups_path(2)] = Crafted(body=json_list("backup", [record]))
    api.answers[backups_path(3)] = Crafted(
        status=500, body=b'{"error": "no\n2026-01-01 ERROR forged \x1b[2J", "remote_access_password": 987654321}')
    report = fetch(client, range(1, 7))
    [listed] = report.outcomes[2].backups
    assert listed == {"id": 1, "backup_size": 1, "iqn": "iqn.2026-01.example:disk",
                      "nested": {"deeper": [{"monkey": "kept"}]}}
    message = report.outcomes[3].message
    assert "987654321" not in message and "[redacted]" in message
    assert "\n" not in message and "\x1b" not in message and "no\\n2026-01-01 ERROR forged \\x1b[2J" in message
    assert "sekrit" not in json.dumps([o.__dict__ for o in report.outcomes.values()], default=str)
