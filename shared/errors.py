"""Errors as ``application/problem+json`` (RFC 9457): ``type``, ``title``, ``status``, ``detail``, a machine
``code`` and ``errors: [{loc, msg}]``. Titles and details are Chinese for people; codes are English for
programs. Domain errors are classes that know their HTTP status; nothing ever returns a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    status: int = 400
    code: str = "bad_request"
    title: str = "请求有误"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        title: str | None = None,
        status: int | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if title is not None:
            self.title = title
        if status is not None:
            self.status = status
        self.errors = errors or []
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "type": f"https://huzhu.example/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            "errors": self.errors,
        }


class NotFound(Problem):
    status, code, title = 404, "not_found", "未找到"


class Forbidden(Problem):
    status, code, title = 403, "forbidden", "无权操作"


class Unauthorized(Problem):
    status, code, title = 401, "unauthorized", "未登录或登录已过期"


class Conflict(Problem):
    status, code, title = 409, "conflict", "状态冲突"


class NotYetKnown(Conflict):
    """A command needs something this service has not learnt yet (events arrive late): try again later."""

    code, title = "not_yet_known", "数据尚未同步，请稍后重试"

    def __init__(self, detail: str, *, code: str | None = None, retry_after: int = 5) -> None:
        super().__init__(detail, code=code, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class Invalid(Problem):
    status, code, title = 422, "validation_failed", "数据校验未通过"


def problem_response(problem: Problem) -> JSONResponse:
    headers = {**({"WWW-Authenticate": "Bearer"} if problem.status == 401 else {}), **problem.headers}
    return JSONResponse(problem.body(), status_code=problem.status, media_type=PROBLEM_JSON, headers=headers)


_PYDANTIC_MSG_ZH = {
    "missing": "缺少必填项",
    "string_type": "必须是文本",
    "int_type": "必须是整数",
    "int_parsing": "必须是整数",
    "decimal_parsing": "必须是金额（两位小数）",
    "decimal_type": "必须是金额（两位小数）",
    "decimal_max_places": "金额最多两位小数",
    "date_from_datetime_parsing": "必须是日期（YYYY-MM-DD）",
    "date_parsing": "必须是日期（YYYY-MM-DD）",
    "date_type": "必须是日期（YYYY-MM-DD）",
    "enum": "取值不在允许范围内",
    "literal_error": "取值不在允许范围内",
    "json_invalid": "不是有效的 JSON",
    "extra_forbidden": "不认识的字段",
    "string_too_short": "不能为空",
    "value_error": "取值无效",
    "list_type": "必须是列表",
    "dict_type": "必须是对象",
    "model_type": "必须是对象",
    "less_than_equal": "超出上限",
    "less_than": "超出上限",
    "greater_than_equal": "低于下限",
    "greater_than": "必须大于下限",
    "finite_number": "不能是 NaN 或无穷大",
    "decimal_max_digits": "位数过多",
    "decimal_whole_digits": "整数位过多",
    "string_too_long": "过长",
}


def field_errors(raw: list[Any]) -> list[dict[str, Any]]:
    out = []
    for err in raw:
        zh = _PYDANTIC_MSG_ZH.get(err.get("type", ""), "取值无效")
        out.append({"loc": list(err.get("loc", ())), "msg": f"{zh}：{err.get('msg', '')}", "type": err.get("type")})
    return out


def _allowed_methods(request: Request) -> set[str]:
    from starlette.routing import Match

    methods: set[str] = set()
    for route in request.app.router.routes:
        if route.matches(request.scope)[0] != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return methods


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(Invalid("请求数据不符合要求，请按 errors 逐项修改。", errors=field_errors(list(exc.errors()))))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: ("not_found", "未找到"), 405: ("method_not_allowed", "不支持的请求方法"),
                  401: ("unauthorized", "未登录或登录已过期"), 403: ("forbidden", "无权操作")}
        code, title = titles.get(exc.status_code, ("http_error", "请求有误"))
        response = problem_response(Problem(str(exc.detail), code=code, title=title, status=exc.status_code))
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, whichever router declared it (RFC 9110 Allow)
            response.headers["Allow"] = ", ".join(sorted(_allowed_methods(request)))
        return response

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        # SQLSTATE class 22 (data exception: a value too long or out of range for its column): the input's fault,
        # caught here as a last resort when a model let it through; anything else is ours.
        if str(getattr(exc.orig, "sqlstate", "") or "").startswith("22"):
            log.warning("input refused by the database: %s", type(exc.orig).__name__)
            return problem_response(Invalid("有取值超出允许的长度或范围，未保存。", code="value_out_of_range",
                                            errors=[{"loc": ["body"], "msg": "取值超出允许的长度或范围"}]))
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(
            Problem("服务内部错误，已记录，请稍后重试。", code="internal_error", title="服务内部错误", status=500)
        )
