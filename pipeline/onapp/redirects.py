"""Where a redirect may lead: only to the API's own origin (scheme, host and port), never with credentials."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import requests

from pipeline.onapp.escape import printable

# Same-origin hops followed per request; a loop of redirects ends here.
MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int] | None:
    """The (scheme, host, port) of an http(s) URL; None for any other URL, or one that carries credentials."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def redirect_target(response: requests.Response) -> str | None:
    """The absolute URL a redirect points to, or None when the response is not a redirect."""
    if not response.is_redirect:
        return None
    # http.client decodes headers as Latin-1; servers send UTF-8 (requests' own reading).
    location = response.headers["Location"].encode("latin-1", "replace").decode("utf-8", "replace")
    return urljoin(response.url, location.strip())


def shown_origin(url: str) -> str:
    """Scheme, host and port of a URL as a person reads them: escaped, and never its user or password."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "an unusable URL"
    return printable(f"{parts.scheme}://{parts.hostname or ''}{'' if port is None else f':{port}'}", 120)
