"""moto's server, refusing what a web browser sends on another site's behalf.

Run as a script (``python -I txguard/moto_guard.py HOST PORT``) by ``txguard.stack``; it
imports nothing of txguard. moto answers anyone who reaches its port, and its global
CORS being off only keeps a web page from reading the answers: a browser still sends a
page's simple requests (a form POST, a no-cors fetch), so any page could POST
``/moto-api/reset`` (every table and bucket gone) or upload an object to S3. A page
served under a name that resolves to 127.0.0.1 (DNS rebinding) is even same-origin.
So requests whose ``Host`` is not a loopback name (any port: a local proxy or tunnel in
front of moto is fine), or that carry an ``Origin`` other than that host's own, are
refused; boto3 and the other clients send ``Host: 127.0.0.1:<port>`` and no ``Origin``.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterable
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def guarded(app: WsgiApp) -> WsgiApp:
    """``app``, answering only requests addressed to a loopback name that no other site sent."""

    def guard(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        host = environ.get("HTTP_HOST", "")
        origin = environ.get("HTTP_ORIGIN")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        # An Origin equal to the Host is moto's own dashboard (/moto-api/) in a browser.
        if name not in LOOPBACK_NAMES or (origin is not None and origin != f"http://{host}"):
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"refused: a request from a web page, or to another host name\n"]
        return app(environ, start_response)

    return guard


def main(argv: list[str]) -> None:
    host, port = argv[0], int(argv[1])
    # What ``python -m moto.server`` does, with the guard around its application.
    os.environ.setdefault("MOTO_PORT", str(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, guarded(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main(sys.argv[1:])
