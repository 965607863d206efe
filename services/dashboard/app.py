"""The ops dashboard (issue #14): one page for centre, office and agency staff, and a thin JSON API behind it.

A fifth small process rather than a page inside one of the services: the page needs figures of all four, and
each service stays the only reader of its own database. The dashboard owns no data. It serves the static page
(``static/``) and Chart.js from ``node_modules`` (installed by ``npm ci``, never a CDN), and answers
``/api/*`` by asking the services' stats endpoints with the caller's own token, so each service applies its
own branch scoping; what it adds is arithmetic across services (the payout ratio) and the health figures read
from each service's ``/metrics``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Form, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from services.dashboard.figures import health_from_metrics, payout_by_month
from services.dashboard.schemas import HealthOut, OverviewOut
from services.dashboard.settings import UPSTREAMS, DashboardSettings
from services.enrollment.stats import PeriodItem
from shared.auth import REVIEWER_LEVEL, CurrentUser, Principal
from shared.errors import Forbidden, Problem, install_error_handlers
from shared.observability import correlation_id_var
from shared.schemas import problem_responses

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
CHART_JS = HERE / "node_modules" / "chart.js" / "dist" / "chart.umd.js"
DASHBOARD_ROLES = (*REVIEWER_LEVEL, "finance", "admin")
REMITTANCE_ROLES = ("finance", "admin", "centre_reviewer", "office_reviewer")
OVERDUE_ROLES = (*REVIEWER_LEVEL, "admin")


class Upstream(Problem):
    """A service answered with an error (passed on as it came) or could not be reached (502)."""

    def __init__(self, body: dict[str, Any], status: int) -> None:
        super().__init__(str(body.get("detail") or "上游服务出错。"), code=str(body.get("code") or "upstream_error"),
                         title=str(body.get("title") or "上游服务出错"), status=status,
                         errors=body.get("errors") or [])


class LoginOut(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    role: str
    org: str | None


class Me(BaseModel):
    username: str
    role: str
    org: str
    org_level: str
    org_path: list[str]


def _allowed(actor: Principal) -> Principal:
    if actor.role not in DASHBOARD_ROLES:
        raise Forbidden("看板仅供互助中心、办事处、代办点和财务人员使用。", code="role_not_allowed")
    return actor


def create_app(settings: DashboardSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=settings.upstream_timeout_seconds) as client:
            app.state.http = client
            yield

    app = FastAPI(title="Huzhu dashboard 运营看板", version="1.0.0", lifespan=lifespan)
    app.state.settings = settings
    install_error_handlers(app)

    @app.middleware("http")
    async def correlation(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        cid = (request.headers.get("X-Correlation-ID") or str(uuid.uuid4()))[:100]
        token = correlation_id_var.set(cid)
        try:
            response = await call_next(request)
        finally:
            correlation_id_var.reset(token)
        response.headers["X-Correlation-ID"] = cid
        response.headers.setdefault("Cache-Control", "no-store")
        # The page loads only its own scripts and styles (nothing from a CDN).
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    async def call(request: Request, service: str, path: str, params: dict[str, str] | None = None) -> Any:
        headers = {"Authorization": request.headers.get("Authorization", ""),
                   "X-Correlation-ID": correlation_id_var.get() or ""}
        try:
            response = await request.app.state.http.get(f"{settings.url(service)}{path}", headers=headers,
                                                        params=params)
        except httpx.HTTPError as exc:
            raise Upstream({"detail": f"{service} 服务暂时无法访问（{type(exc).__name__}）。",
                            "code": "upstream_unreachable"}, 502) from None
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            raise Upstream(body if isinstance(body, dict) else {}, response.status_code
                           if response.status_code < 500 else 502)
        return response.json()

    @app.get("/healthz", tags=["ops"], response_model=dict[str, str])
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": "dashboard"}

    @app.get("/readyz", tags=["ops"], response_model=dict[str, str])
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/api/login", response_model=LoginOut, tags=["dashboard"],
              responses=problem_responses(401, 403, 422, 429, 502))
    async def login(request: Request, username: Annotated[str, Form(max_length=100)],
                    password: Annotated[str, Form(max_length=200)]) -> Any:
        """The enrollment login (``POST /api/v1/auth/token``), passed through."""
        try:
            response = await request.app.state.http.post(
                f"{settings.url('enrollment')}/api/v1/auth/token", data={"username": username, "password": password})
        except httpx.HTTPError:
            raise Upstream({"detail": "登录服务暂时无法访问。", "code": "upstream_unreachable"}, 502) from None
        body = response.json()
        if response.status_code >= 400:
            raise Upstream(body, response.status_code if response.status_code < 500 else 502)
        if body.get("role") not in DASHBOARD_ROLES:
            raise Forbidden("看板仅供互助中心、办事处、代办点和财务人员使用。", code="role_not_allowed")
        return body

    @app.get("/api/me", response_model=Me, tags=["dashboard"], responses=problem_responses(401, 403))
    async def me(actor: CurrentUser) -> Any:
        actor = _allowed(actor)
        return {"username": actor.username, "role": actor.role, "org": actor.org, "org_level": actor.org_level,
                "org_path": list(actor.org_path)}

    @app.get("/api/periods", tags=["dashboard"], response_model=list[PeriodItem],
             responses=problem_responses(401, 403, 502))
    async def periods(request: Request, actor: CurrentUser) -> Any:
        _allowed(actor)
        return await call(request, "enrollment", "/api/v1/stats/periods")

    @app.get("/api/overview", tags=["dashboard"], response_model=OverviewOut,
             responses=problem_responses(401, 403, 404, 422, 502))
    async def overview(request: Request, actor: CurrentUser,
                       period: Annotated[str, Query(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_.-]+$")]
                       ) -> dict[str, Any]:
        """Every figure of the page for one period, in the caller's branch, each from the service that owns it."""
        _allowed(actor)
        started = time.perf_counter()

        async def none() -> None:
            return None

        enrollment, remittance, claims, overdue, payments = await asyncio.gather(
            call(request, "enrollment", f"/api/v1/stats/periods/{period}/enrollment"),
            call(request, "enrollment", f"/api/v1/periods/{period}/remittance-report")
            if actor.role in REMITTANCE_ROLES else none(),
            call(request, "claims", f"/api/v1/stats/periods/{period}/claims"),
            call(request, "claims", "/api/v1/claims/overdue") if actor.role in OVERDUE_ROLES else none(),
            call(request, "payments", f"/api/v1/stats/periods/{period}/payments"),
        )
        overdue_list = [c for c in overdue or [] if c.get("period") == period]
        return {
            "period": period, "branch": actor.org or "*", "role": actor.role,
            "enrollment": enrollment, "remittance": remittance["totals"] if remittance else None,
            "remittance_offices": remittance["offices"] if remittance else None,
            "claims": claims, "overdue": overdue_list, "payments": payments,
            "payout": payout_by_month(claims["by_month"], payments["paid_by_month"], enrollment["fees_by_month"]),
            "elapsed_ms": round((time.perf_counter() - started) * 1000),
        }

    @app.get("/api/health", tags=["dashboard"], response_model=HealthOut, responses=problem_responses(401, 403))
    async def health(request: Request, actor: CurrentUser) -> dict[str, Any]:
        """Outbox backlog, consumer lag per topic and dead letters of each service, from its /metrics."""
        _allowed(actor)

        async def one(service: str) -> dict[str, Any]:
            try:
                response = await request.app.state.http.get(f"{settings.url(service)}/metrics", timeout=5)
                response.raise_for_status()
                return {"service": service, "up": True, **health_from_metrics(response.text)}
            except (httpx.HTTPError, ValueError) as exc:
                return {"service": service, "up": False, "error": type(exc).__name__}

        return {"services": list(await asyncio.gather(*(one(s) for s in UPSTREAMS)))}

    @app.get("/vendor/chart.umd.js", include_in_schema=False)
    async def chart_js() -> Response:
        if not CHART_JS.is_file():
            return JSONResponse({"detail": "chart.js missing: run `npm ci` in services/dashboard (make install)"},
                                status_code=503)
        return FileResponse(CHART_JS, media_type="text/javascript")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def serve() -> None:
    import uvicorn

    from shared.observability import configure_logging

    settings = DashboardSettings()
    configure_logging("dashboard", settings.log_level, settings.log_json)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None, access_log=False,
                timeout_graceful_shutdown=5)
