"""One POST to a real loopback receiver: retried on 5xx, 429 and dropped connections, never redirected, never raising,
and the URL's token nowhere in what it returns or logs."""

from __future__ import annotations

import logging
import socket

import pytest

from pipeline.alerts.webhook import Delivery, post, secret_parts
from tests.alerts.receiver import DROP

MESSAGE = {"text": "OnApp backups: 1 alert firing", "alerts": [{"kind": "protection_gap", "key": "7",
                                                                  "state": "firing", "message": "VM 7: no backups"}]}
FAST = {"backoff_factor": 0.001}


def test_a_message_is_posted_once_as_json(receiver):
    delivery = post(receiver.url, MESSAGE, **FAST)
    assert delivery == Delivery(ok=True, http_status=200, tries=1)
    [received] = receiver.posts
    assert received.body == MESSAGE
    assert received.headers["Content-Type"] == "application/json"
    assert received.path == f"/services/{receiver.token}"


@pytest.mark.parametrize("failures", [[500, 503], [429], [DROP, 502]])
def test_failed_tries_are_retried_until_one_is_taken(receiver, failures):
    receiver.plan.extend(failures)
    delivery = post(receiver.url, MESSAGE, **FAST)
    assert delivery == Delivery(ok=True, http_status=200, tries=len(failures) + 1)
    assert len(receiver.posts) == 1 and receiver.tries == len(failures) + 1


def test_a_receiver_that_keeps_failing_is_reported_not_raised(receiver, caplog):
    receiver.always = 500
    caplog.set_level(logging.DEBUG)
    delivery = post(receiver.url, MESSAGE, retries=3, **FAST)
    assert (delivery.ok, delivery.status, delivery.http_status, delivery.tries) == (False, "failed", 500, 4)
    assert receiver.tries == 4
    # The error page quoted the path: the reason keeps the page, not the token.
    assert delivery.reason == "HTTP 500: no such hook: (hidden)"
    assert receiver.token not in caplog.text


def test_a_redirect_is_not_followed(receiver):
    receiver.plan.append(302)
    delivery = post(receiver.url, MESSAGE, **FAST)
    assert (delivery.ok, delivery.http_status, delivery.tries) == (False, 302, 1)
    assert receiver.tries == 1


def test_a_receiver_that_is_not_there_is_reported_without_the_url(caplog):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/services/T0KEN-not-to-be-seen?token=also-secret"
    caplog.set_level(logging.DEBUG)
    delivery = post(url, MESSAGE, retries=2, **FAST)
    assert (delivery.ok, delivery.http_status, delivery.tries) == (False, None, 3)
    assert delivery.reason == "could not connect (refused, unreachable or unknown host)"
    assert "T0KEN" not in caplog.text and "also-secret" not in caplog.text


def test_dropped_connections_are_logged_by_urllib3_without_the_token(receiver, caplog):
    receiver.always = DROP
    caplog.set_level(logging.DEBUG)
    delivery = post(receiver.url, MESSAGE, retries=2, **FAST)
    assert (delivery.ok, delivery.tries, delivery.reason) == (False, 3, "the connection closed without an answer")
    # urllib3 says which request it retries; the path it names is hidden.
    assert "Retrying" in caplog.text and "(hidden)" in caplog.text
    assert receiver.token not in caplog.text


def test_a_receiver_slower_than_the_read_timeout_is_retried_then_reported(receiver):
    receiver.delay_s = 0.5
    delivery = post(receiver.url, MESSAGE, retries=1, timeout=(1.0, 0.1), **FAST)
    assert (delivery.ok, delivery.http_status, delivery.tries) == (False, None, 2)
    assert delivery.reason == "no answer within the read timeout"
    assert receiver.tries == 2


def test_the_secret_parts_of_a_url_are_its_path_query_and_whole():
    assert secret_parts("https://hooks.example.com/services/T0/B0/xyz?sig=abc") == [
        "https://hooks.example.com/services/T0/B0/xyz?sig=abc", "/services/T0/B0/xyz", "sig=abc"]
    assert secret_parts("https://hooks.example.com/") == ["https://hooks.example.com/"]
