"""The dashboard's web application: :func:`create_app` builds it, :func:`serve` runs it with uvicorn."""

from __future__ import annotations

import getpass
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse

from schemas.fields import TRANS_NUM_PATTERN
from schemas.topics import ALERTS, LABELS
from txguard.app import App, AppError
from txguard.dashboard import DEFAULT_HOST, DEFAULT_PORT
from txguard.dashboard.live import AlertFeed, Broadcast, ThroughputMonitor
from txguard.dashboard.security import ANALYST_PATTERN, Guard, bind_problem, is_loopback, same_origin
from txguard.dashboard.store import (
    LabelPublisher,
    PublishFailed,
    UnknownTransaction,
    Verdict,
    alert_detail,
    latest_alerts,
    record_verdict,
)
from txguard.settings import Settings

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
CHART_TTL_S = 15.0  # a chart is re-rendered at most this often, however many pages ask
ROLLUP_EVERY_S = 300.0  # the aggregate views' rollup takes the newly completed days this often
TransNum = Annotated[str, PathParam(pattern=TRANS_NUM_PATTERN)]


class VerdictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trans_num: str = Field(pattern=TRANS_NUM_PATTERN)
    verdict: Verdict
    # Who, when no one is authenticated (loopback without a token); ignored otherwise.
    analyst: str | None = Field(default=None, pattern=f"^{ANALYST_PATTERN.pattern}$")


class Charts:
    """The charts of :mod:`txguard.charts`, rendered from PostgreSQL and kept ``ttl_s`` seconds."""

    def __init__(self, connect: Callable[[], Any], refresh_rollup: Callable[[], Any], ttl_s: float = CHART_TTL_S):
        self.connect = connect
        self.refresh_rollup = refresh_rollup
        self.ttl_s = ttl_s
        self._rolled_up_at = -ROLLUP_EVERY_S
        self._cache: dict[str, tuple[float, bytes, bytes]] = {}
        self._lock = threading.Lock()  # matplotlib is not thread-safe: one rendering at a time

    @property
    def titles(self) -> dict[str, str]:
        try:
            from txguard.charts import CHARTS
        except ImportError:  # pragma: no cover - the charts module ships with txguard
            return {}
        return dict(CHARTS)

    def get(self, name: str) -> tuple[bytes, bytes]:
        """(PNG, JSON rows) of chart ``name``; KeyError if there is no such chart."""
        if name not in self.titles:
            raise KeyError(name)
        with self._lock:
            cached = self._cache.get(name)
            if cached and time.monotonic() - cached[0] < self.ttl_s:
                return cached[1], cached[2]
            from txguard.charts import chart_data, render_png

            # The views are current without it, but read the days after the rollup live.
            if time.monotonic() - self._rolled_up_at >= ROLLUP_EVERY_S:
                self.refresh_rollup()
                self._rolled_up_at = time.monotonic()
            conn = self.connect()
            try:
                frame = chart_data(conn, name)
            finally:
                conn.close()
            png = render_png(name, frame)
            rows = frame.to_json(orient="records", date_format="iso").encode()
            self._cache[name] = (time.monotonic(), png, rows)
            return png, rows


def create_app(settings: Settings, *, host: str = DEFAULT_HOST, app: App | None = None) -> FastAPI:
    """The dashboard for ``settings``' namespace, to be served on ``host``.

    Refuses (:class:`AppError`) a non-loopback ``host`` without ``settings.dashboard_token``.
    The Kafka consumer threads start with the application's lifespan (uvicorn's startup).
    """
    token = settings.dashboard_token.get_secret_value()
    problem = bind_problem(host, token)
    if problem:
        raise AppError(problem)
    core = app or App(settings)
    broadcast = Broadcast()
    charts = Charts(lambda: core.clients.pg(), core.refresh_analyst_views)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_api: FastAPI) -> AsyncIterator[None]:
        feed = AlertFeed(core.clients, settings.topic(ALERTS), broadcast)
        feed.start()
        state.update(feed=feed, monitor=ThroughputMonitor(core.clients),
                     publisher=LabelPublisher(core.clients.producer(), settings.topic(LABELS)))  # fmt: skip
        try:
            yield
        finally:
            feed.close()
            state["monitor"].close()
            state["publisher"].close()
            state.clear()  # let the Kafka clients go now, not when the application object does

    api = FastAPI(title="txguard dashboard", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    api.state.feed_ready = lambda: "feed" in state and state["feed"].ready.is_set()
    api.add_middleware(Guard, token=token, loopback=is_loopback(host))
    api.mount("/static", StaticFiles(directory=STATIC), name="static")
    default_analyst = getpass.getuser()

    def analyst_of(request: Request, asked: str | None = None) -> str:
        authenticated = getattr(request.state, "analyst", None)
        return authenticated or asked or default_analyst

    def publisher() -> LabelPublisher:
        if "publisher" not in state:  # the lifespan has not run (never under uvicorn)
            raise HTTPException(503, "the dashboard is starting")
        return state["publisher"]

    @api.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @api.get("/api/config")
    def config(request: Request) -> dict[str, Any]:
        return {
            "namespace": settings.namespace or "(default)",
            "analyst": analyst_of(request),
            # Without authentication the page asks who is deciding; with it, the user name is who.
            "analyst_editable": not token,
            "charts": charts.titles,
            "alerts_limit": settings.dashboard_alerts,
        }

    @api.get("/api/alerts")
    def alerts(limit: Annotated[int | None, Query(ge=1, le=5000)] = None) -> list[dict[str, Any]]:
        conn = core.clients.pg()
        try:
            return latest_alerts(conn, limit or settings.dashboard_alerts)
        finally:
            conn.close()

    @api.get("/api/alerts/{trans_num}")
    def alert(trans_num: TransNum) -> dict[str, Any]:
        conn = core.clients.pg()
        try:
            return alert_detail(conn, trans_num)
        except UnknownTransaction:
            raise HTTPException(404, "no such transaction") from None
        finally:
            conn.close()

    @api.post("/api/verdicts")
    def verdict(body: VerdictRequest, request: Request) -> dict[str, Any]:
        problem = same_origin(request.headers)
        if problem:
            raise HTTPException(403, problem)
        label_publisher = publisher()
        conn = core.clients.pg()
        try:
            return record_verdict(conn, label_publisher, body.trans_num, body.verdict,
                                  analyst_of(request, body.analyst))  # fmt: skip
        except UnknownTransaction:
            raise HTTPException(404, "no such transaction: nothing was recorded") from None
        except PublishFailed as exc:
            raise HTTPException(503, f"{exc}: nothing was recorded") from None
        finally:
            conn.close()

    @api.get("/api/throughput")
    def throughput() -> dict[str, Any]:
        if "monitor" not in state:
            raise HTTPException(503, "the dashboard is starting")
        return state["monitor"].sample()

    @api.get("/api/charts")
    def chart_list() -> dict[str, str]:
        return charts.titles

    @api.get("/api/charts/{name}")
    def chart_rows(name: str) -> Response:
        try:
            return Response(charts.get(name)[1], media_type="application/json", headers={"Cache-Control": "no-store"})
        except KeyError:
            raise HTTPException(404, "no such chart") from None

    @api.get("/charts/{name}.png")
    def chart_png(name: str) -> Response:
        try:
            return Response(charts.get(name)[0], media_type="image/png", headers={"Cache-Control": "no-store"})
        except KeyError:
            raise HTTPException(404, "no such chart") from None

    @api.get("/events")
    async def events(request: Request) -> EventSourceResponse:
        queue = broadcast.subscribe()

        async def stream() -> AsyncIterator[dict[str, str]]:
            try:
                yield {"event": "hello", "data": json.dumps({"feed": api.state.feed_ready()})}
                while True:
                    item = await queue.get()
                    yield {"event": "alert", "data": json.dumps(item)}
            finally:
                broadcast.unsubscribe(queue)

        return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})

    return api


def serve(settings: Settings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, app: App | None = None,
          on_ready: Callable[[str], None] | None = None) -> None:  # fmt: skip
    """Run the dashboard until Ctrl-C or SIGTERM; ``on_ready(url)`` once it listens.

    uvicorn handles both signals while it serves, then raises the signal again once it
    has stopped: SIGTERM is made to unwind like Ctrl-C, so the caller's ``finally`` blocks
    run (the demo stops its services there) instead of the process ending on the spot.
    """
    import signal

    import uvicorn

    api = create_app(settings, host=host, app=app)
    config = uvicorn.Config(api, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2,
                            server_header=False, proxy_headers=False)  # fmt: skip
    server = uvicorn.Server(config)
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
    if on_ready:
        started = server.startup

        async def startup(sockets: Any = None) -> None:
            await started(sockets)
            if server.started:
                on_ready(url)

        server.startup = startup  # type: ignore[method-assign]
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
