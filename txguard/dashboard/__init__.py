"""The analysts' live dashboard: ``txguard dashboard``.

Built on FastAPI (Starlette) with sse-starlette and uvicorn, because:

- one process serves the page, the JSON API and the live feed, next to a Kafka consumer
  thread; nothing else to deploy (no separate front-end server, no message relay);
- it is asynchronous, so each open page holds a cheap server-sent-events stream rather
  than a thread, and the blocking work (PostgreSQL, Kafka admin calls, chart rendering)
  runs in Starlette's thread pool;
- server-sent events push alerts to the page one way over plain HTTP: the browser's
  ``EventSource`` reconnects by itself and sends the page's credentials, which websockets
  would not give for free, and the page needs nothing pushed back;
- requests are validated from type hints (a malformed verdict is a 422 before any code runs);
- all three are widely used and actively maintained.

The page itself is one static HTML file with plain JavaScript (no CDN, no external font):
see ``static/``.

The application is :func:`txguard.dashboard.server.create_app`; this package's top imports
nothing, so the CLI can read the defaults without loading the web stack.
"""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050
