"""Who may use the dashboard: the bind check, HTTP Basic, Host and Origin checks.

- Listening on anything but loopback needs ``dashboard_token`` (refused otherwise).
- With a token, every request needs HTTP Basic: any user name (it is recorded as who gave
  a verdict) and the token as the password. Basic, not a bearer token, because the browser
  then sends it by itself on every request, the ``EventSource`` stream included.
- On loopback the Host header must name loopback: a page on another site that re-points
  its DNS name at 127.0.0.1 (DNS rebinding) is refused.
- A verdict must come from the dashboard's own origin, as JSON (see :func:`same_origin`).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import secrets
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A user name is recorded in PostgreSQL and shown in the page: printable, short.
ANALYST_PATTERN = re.compile(r"[^\x00-\x1f\x7f]{1,64}")

SECURITY_HEADERS = [
    # Only the dashboard's own scripts, styles, images and connections: nothing from elsewhere.
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),  # fmt: skip
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1), with or without brackets."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The host of a Host header, without its port: ``[::1]:8050`` -> ``[::1]``."""
    if header.startswith("["):
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def bind_problem(host: str, token: str) -> str | None:
    """Why the dashboard must not listen on ``host``, or None."""
    if is_loopback(host) or token:
        return None
    return (
        f"refusing to serve the dashboard on {host}: it is not a loopback address and "
        "TXGUARD_DASHBOARD_TOKEN is not set. Set it (HTTP Basic: any user name, the token as the password), "
        "or use --host 127.0.0.1"
    )


def basic_user(authorization: str | None, token: str) -> str | None:
    """The user name of a valid ``Authorization: Basic`` header for ``token``, else None."""
    if not authorization or not authorization[:6].lower() == "basic ":
        return None
    try:
        user, _, password = base64.b64decode(authorization[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    # Compared in constant time, as bytes: a wrong password reveals nothing of the token.
    if not secrets.compare_digest(password.encode(), token.encode()) or not ANALYST_PATTERN.fullmatch(user):
        return None
    return user


class Guard:
    """ASGI middleware: Host check (loopback binds), HTTP Basic (when a token is set), security headers.

    A plain ASGI middleware rather than Starlette's ``BaseHTTPMiddleware``, which would
    buffer the event stream's chunks through a task group.
    """

    def __init__(self, app: ASGIApp, token: str, loopback: bool):
        self.app = app
        self.token = token
        self.loopback = loopback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if self.loopback and not is_loopback(host_name(headers.get("host", ""))):
            await PlainTextResponse("this dashboard answers to loopback host names only", 421)(scope, receive, send)
            return
        if self.token:
            user = basic_user(headers.get("authorization"), self.token)
            if user is None:
                challenge = {"WWW-Authenticate": 'Basic realm="txguard dashboard", charset="UTF-8"'}
                await PlainTextResponse("authentication required", 401, headers=challenge)(scope, receive, send)
                return
            scope.setdefault("state", {})["analyst"] = user

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def same_origin(headers: Headers) -> str | None:
    """Why a state-changing request may have come from another site, or None.

    Browsers send ``Origin`` (and ``Sec-Fetch-Site``) with every POST from a script: it must
    be this server's own. A client that sends neither is not a browser, so not a cross-site
    forgery; the JSON content type required besides keeps plain HTML forms out, since a
    cross-site script cannot send JSON without a CORS preflight, which this server never grants.
    """
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        return "a verdict is sent as application/json"
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"cross-site request refused (Sec-Fetch-Site: {site})"
    origin = headers.get("origin")
    if origin is not None and urlsplit(origin).netloc.lower() != headers.get("host", "").lower():
        return "cross-origin request refused (Origin is not this dashboard)"
    return None
