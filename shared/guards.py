"""What every request passes before anything else reads it (issue #9 items 2 and 3).

Two ASGI middlewares, installed by ``shared.service.create_app`` for every service, outside routing, body
parsing and authentication:

``BodyLimit``
    A limit on the body's size per route: ``max_body_bytes`` (1 MiB) by default; a service names the routes
    that take more in ``ServiceSpec.body_limits`` (path template -> the setting holding the limit: roster files
    ``max_roster_bytes``, documents ``max_document_bytes``, settlement feeds ``max_feed_bytes``). A declared
    ``Content-Length`` over the limit is answered 413 at once, without reading a byte of the body; a body
    without one (chunked) is counted as it streams and cut at the limit with the same 413. The connection
    stays usable: the server drops what is left of a refused body and reads the next request.

``InputGuard``
    Text nobody can store: a NUL (PostgreSQL text cannot hold one) or an unpaired surrogate (not UTF-8) in
    the path, a query parameter, a form field or anywhere in a JSON / NDJSON body (keys included) is a 422
    naming the field; JSON nested deeper than ``max_json_depth`` (64) is a 422 (100,000 levels would blow the
    parser's stack); NaN and infinite numbers are a 422. JSON bodies are read whole here (bounded by
    ``BodyLimit`` and by ``max_buffered_bytes``, 64 MiB: a route may stream more, never buffer it), checked,
    and handed on unchanged. Multipart and NDJSON bodies are not buffered here: the routes that take them read
    them as streams and check every line themselves (the bureau feed, services/claims/settlements); the text
    fields of forms are typed with ``shared.fields.Text``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from pydantic_core import from_json
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import Problem, problem_response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines")
FORM_TYPE = "application/x-www-form-urlencoded"


class BodyTooLarge(Problem):
    status, code, title = 413, "body_too_large", "请求体过大"


class RequestRefused(StarletteHTTPException):
    """Raised from inside ``receive`` when a streamed body passes its limit: an HTTPException so that FastAPI's
    body reading lets it through to the problem handler (it turns any other exception into a 400)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.status, problem.detail)
        self.problem = problem


def too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"请求体超过本接口的上限 {_size(limit)}，未处理。", errors=[
        {"loc": ["body"], "msg": f"不能超过 {_size(limit)}（{limit} 字节）", "limit": limit}])


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB" if n >= 1024 * 1024 else f"{n} 字节"


async def send_problem(send: Send, problem: Problem) -> None:
    response = problem_response(problem)
    await send({"type": "http.response.start", "status": response.status_code,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]})
    await send({"type": "http.response.body", "body": response.body, "more_body": False})


def route_pattern(template: str) -> re.Pattern[str]:
    """``/api/v1/claims/{claim_id}/documents`` -> a regex matching that path (a parameter is one segment)."""
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("^" + "".join("([^/]+)" if p.startswith("{") else re.escape(p) for p in parts if p) + "$")


class BodyLimit:
    def __init__(self, app: ASGIApp, *, default: int, routes: Iterable[tuple[str, int]] = ()) -> None:
        self.app = app
        self.default = default
        self.routes = [(route_pattern(template), limit) for template, limit in routes]

    def limit_for(self, path: str) -> int:
        for pattern, limit in self.routes:
            if pattern.match(path):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await send_problem(send, Problem("Content-Length 无效。", code="bad_content_length"))
                return
            if int(declared) > limit:
                await send_problem(send, too_large(limit))
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestRefused(too_large(limit))
            return message

        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except RequestRefused as exc:  # raised where no problem handler runs (e.g. in a middleware)
            if started:
                raise
            await send_problem(send, exc.problem)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1").strip())
    return None


# --- text nobody can store ------------------------------------------------------------------------------------
def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None: a NUL, or an unpaired surrogate (not UTF-8)."""
    if "\x00" in value:
        return "不能包含 NUL 字符（\\u0000）"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "不能包含不成对的代理字符（不是有效的 Unicode 文本）"
    return None


class _Refuse(Exception):
    def __init__(self, loc: list[Any], msg: str, code: str) -> None:
        self.loc, self.msg, self.code = loc, msg, code


def _walk(value: Any, loc: list[Any], depth: int, max_depth: int, texts: bool) -> None:
    if isinstance(value, str):
        if texts and (problem := text_problem(value)):
            raise _Refuse(loc, problem, "invalid_text")
    elif isinstance(value, dict):
        if depth >= max_depth:
            raise _Refuse(loc, f"JSON 嵌套不能超过 {max_depth} 层", "json_too_deep")
        for key, item in value.items():
            if texts and (problem := text_problem(key)):
                raise _Refuse([*loc, key.encode("utf-8", "backslashreplace").decode()], f"字段名{problem}",
                              "invalid_text")
            _walk(item, [*loc, key], depth + 1, max_depth, texts)
    elif isinstance(value, list):
        if depth >= max_depth:
            raise _Refuse(loc, f"JSON 嵌套不能超过 {max_depth} 层", "json_too_deep")
        for index, item in enumerate(value):
            _walk(item, [*loc, index], depth + 1, max_depth, texts)
    elif (isinstance(value, float) and not math.isfinite(value)) or (
            isinstance(value, Decimal) and not value.is_finite()):
        raise _Refuse(loc, "不能是 NaN 或无穷大", "not_a_number")


def value_problem(value: Any, max_depth: int = 64) -> tuple[list[Any], str, str] | None:
    """(loc, message, code) of the first text, depth or number in an already parsed value (a YAML document)
    that cannot be stored, or None."""
    try:
        _walk(value, [], 0, max_depth, True)
    except _Refuse as refused:
        return refused.loc, refused.msg, refused.code
    return None


def check_json(body: bytes, max_depth: int) -> Problem | None:
    """The body as JSON (or NDJSON, one value a line) checked for depth, text and numbers; None when fine or
    when it is not JSON at all (the endpoint then answers its own parse error)."""
    # Strings are only walked when a NUL escape is there at all: unpaired surrogates the parser refuses.
    texts = b"\\u0000" in body
    try:
        try:
            _walk(from_json(body, allow_inf_nan=True), ["body"], 0, max_depth, texts)
            return None
        except ValueError as exc:
            if (refused := _parse_refusal(str(exc), ["body"], max_depth)) is not None:
                return refused
        for number, line in enumerate(body.splitlines(), start=1):  # NDJSON: one line at a time
            if not line.strip():
                continue
            try:
                value = from_json(line, allow_inf_nan=True)
            except ValueError as line_exc:
                return _parse_refusal(str(line_exc), ["body", f"line {number}"], max_depth)
            _walk(value, ["body", f"line {number}"], 0, max_depth, texts)
    except _Refuse as refused:
        return _refusal(refused.loc, refused.msg, refused.code)
    return None


def _parse_refusal(message: str, loc: list[Any], max_depth: int) -> Problem | None:
    if "recursion limit" in message:
        return _refusal(loc, f"JSON 嵌套不能超过 {max_depth} 层", "json_too_deep")
    if "surrogate" in message or "hex escape" in message:
        return _refusal(loc, f"不能包含不成对的代理字符（{message}）", "invalid_text")
    return None


def _refusal(loc: list[Any], msg: str, code: str) -> Problem:
    where = ".".join(str(part) for part in loc[1:]) or loc[0]
    return Problem(f"{where}：{msg}。", code=code, title="数据校验未通过", status=422,
                   errors=[{"loc": loc, "msg": msg, "code": code}])


def check_pairs(pairs: Iterable[tuple[str, str]], where: str) -> Problem | None:
    for key, value in pairs:
        for text in (key, value):
            if problem := text_problem(text):
                name = key.encode("utf-8", "backslashreplace").decode()
                return _refusal([where, name], problem, "invalid_text")
    return None


class InputGuard:
    def __init__(self, app: ASGIApp, *, max_depth: int, routes: Callable[[], Iterable[Any]],
                 max_buffered_bytes: int = 64 * 1024 * 1024) -> None:
        self.app = app
        self.max_depth = max_depth
        self.max_buffered_bytes = max_buffered_bytes
        self.routes = routes  # the app's path templates, to name a path parameter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self.check_path(scope) or check_pairs(
            parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True, encoding="utf-8",
                      errors="surrogateescape"), "query")
        if problem is not None:
            await send_problem(send, problem)
            return
        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        kind = _body_kind(content_type, _header(scope, b"content-length"), _header(scope, b"transfer-encoding"))
        if kind is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        buffered = 0
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunks.append(message.get("body", b""))
                buffered += len(chunks[-1])
                if buffered > self.max_buffered_bytes:
                    raise RequestRefused(too_large(self.max_buffered_bytes))
                if not message.get("more_body", False):
                    break
        except RequestRefused as exc:
            await send_problem(send, exc.problem)
            return
        body = b"".join(chunks)
        del chunks
        if kind == "form":
            problem = check_pairs(parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="utf-8",
                                            errors="surrogateescape"), "body")
        elif body.strip():
            problem = check_json(body, self.max_depth)
        if problem is not None:
            await send_problem(send, problem)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def check_path(self, scope: Scope) -> Problem | None:
        path: str = scope["path"]
        if (problem := text_problem(path)) is None:
            return None
        for template in self.routes():  # name the parameter: the first route template the path fits
            names = re.findall(r"\{([^}:]+)[^}]*\}", template)
            found = route_pattern(template).match(path)
            if found is not None:
                for name, value in zip(names, found.groups(), strict=True):
                    if text_problem(value):
                        return _refusal(["path", name], problem, "invalid_text")
        return _refusal(["path"], problem, "invalid_text")


def _body_kind(content_type: str, length: str | None, encoding: str | None) -> str | None:
    if length in (None, "0") and encoding is None:
        return None  # no body
    if content_type == FORM_TYPE:
        return "form"
    if content_type in NDJSON_TYPES:
        return None  # streamed by its route, which checks each line (never buffered whole)
    if content_type in JSON_TYPES or content_type.endswith("+json") or not content_type:
        return "json"
    return None


def install(app: Any, *, default_limit: int, route_limits: Mapping[str, int], max_depth: int) -> None:
    """Add both middlewares (the limit outside the guard) and the problem handler for a body cut mid-stream."""
    app.add_middleware(InputGuard, max_depth=max_depth, routes=lambda: list(app.openapi().get("paths", {})))
    app.add_middleware(BodyLimit, default=default_limit, routes=list(route_limits.items()))

    async def refused(_: Any, exc: Exception) -> Any:
        assert isinstance(exc, RequestRefused)
        return problem_response(exc.problem)

    app.add_exception_handler(RequestRefused, refused)


__all__ = ["BodyLimit", "BodyTooLarge", "InputGuard", "RequestRefused", "check_json", "install", "text_problem",
           "value_problem"]


def setting_limit(settings: Any, name: str | tuple[str, int]) -> int:
    """A route's limit from the settings: a setting's name, or (name, extra bytes) for a multipart envelope."""
    if isinstance(name, tuple):
        return int(getattr(settings, name[0])) + name[1]
    return int(getattr(settings, name))
