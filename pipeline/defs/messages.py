"""Failures told in the terms a person configures: which setting to look at, not urllib3's internals."""

from urllib.parse import urlsplit

import requests

from pipeline.onapp.client import ApiError, PaginationError, printable


def describe_request_error(error: Exception, api_url: str) -> str:
    """One line for a failed request to the API at api_url, naming the setting that governs it."""
    text = printable(str(error), 300)  # API text: escaped before it reaches a log line or the ledger
    where = f"the API at {api_url} (ONAPP_API_URL)"
    if isinstance(error, (ApiError, PaginationError)):
        return text
    if isinstance(error, requests.exceptions.SSLError):
        reason = "certificate verify failed" if "CERTIFICATE_VERIFY_FAILED" in text else _tail(text)
        return f"{where} failed TLS verification ({reason}); for a private CA set ONAPP_CA_BUNDLE"
    if isinstance(error, requests.Timeout) or "timed out" in text.lower():
        return f"{where} did not answer in time (ONAPP_CONNECT_TIMEOUT, ONAPP_READ_TIMEOUT, ONAPP_REQUEST_DEADLINE)"
    if "Name or service not known" in text or "nodename nor servname" in text or "Temporary failure in name" in text:
        return f"the host of ONAPP_API_URL ({urlsplit(api_url).hostname}) could not be resolved"
    if "Connection refused" in text:
        return f"{where} cannot be reached: connection refused"
    if isinstance(error, requests.ConnectionError):
        return f"{where} cannot be reached: {_tail(text)}"
    return text


def _tail(text: str) -> str:
    # urllib3 nests its causes; the last clause is the one a person can act on.
    return text.rsplit(": ", 1)[-1].strip(" ')\"(") or text
