"""moto's server, refusing what a web browser sends on another site's behalf.

Run as a script (``python -I txguard/moto_guard.py HOST PORT``) by ``txguard.stack``; it
imports nothing of txguard. moto answers anyone who reaches its port, and its global
CORS being off only keeps a web page from reading the answers: a browser still sends a
page's simple requests (a form POST, a no-cors fetch), so any page could POST
``/moto-api/reset`` (every table and bucket gone) or upload an object to S3. A page
served under a name that resolves to 127.0.0.1 (DNS rebinding) is even same-origin.
So requests whose ``Host`` is not this server's loopback address, or that carry the
``Origin`` of another site, are refused; boto3 and the other clients send neither.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterable
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def guarded(app: WsgiApp, port: int) -> WsgiApp:
    """``app``, answering only requests addressed to 127.0.0.1/localhost:``port`` from no other site."""
    hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
    origins = {f"http://{host}" for host in hosts}  # moto's own dashboard, /moto-api/

    def guard(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        origin = environ.get("HTTP_ORIGIN")
        if environ.get("HTTP_HOST") not in hosts or (origin is not None and origin not in origins):
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
    run_simple(host, port, guarded(app, port), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main(sys.argv[1:])
