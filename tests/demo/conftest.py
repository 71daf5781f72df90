"""The demo cloud's credentials, and an HTTP session that sends them."""

from __future__ import annotations

import pytest
import requests

AUTH = ("demo", "demo-api-key")


@pytest.fixture
def http():
    """A requests session with the demo credentials as Basic auth."""
    with requests.Session() as session:
        session.auth = AUTH
        yield session
