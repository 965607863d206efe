"""Building blocks of response models, shared by every service so each OpenAPI document describes what comes back.

- ``MoneyOut``: a Decimal sent as a string with two decimals (``"1260.00"``), the one output form of money
  (rounding itself stays in ``shared.money``).
- ``ProblemDetail`` and ``problem_responses(...)``: the ``application/problem+json`` body of every error
  (``shared.errors``), declared on routes so generated clients know the error shape.
- ``Page[T]``: a keyset-paginated list, ``{items, next_cursor}``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema

from shared.errors import PROBLEM_JSON
from shared.money import format_money

__all__ = ["MoneyOut", "Page", "ProblemDetail", "ProblemFieldError", "problem_responses"]

MoneyOut = Annotated[
    Decimal,
    PlainSerializer(format_money, return_type=str, when_used="always"),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+\.\d{2}$", "examples": ["1260.00"]}, mode="serialization"),
]


class ProblemFieldError(BaseModel):
    loc: list[str | int]
    msg: str
    code: str | None = None


class ProblemDetail(BaseModel):
    """RFC 9457 problem details: Chinese ``title``/``detail`` for people, an English ``code`` for programs."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[ProblemFieldError] = []


_DESCRIPTIONS = {
    400: "请求有误", 401: "未登录或登录已过期", 403: "无权操作", 404: "未找到", 409: "冲突（含 Retry-After 的可稍后重试）",
    413: "请求体过大", 415: "不支持的媒体类型", 422: "数据校验未通过（errors 逐项列出字段与行）", 429: "请求过于频繁",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status answered with a problem+json body."""
    return {
        status: {"model": ProblemDetail, "description": _DESCRIPTIONS.get(status, "错误"),
                 "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}}}
        for status in statuses
    }


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a keyset-paginated list: pass ``next_cursor`` back as ``cursor`` for the next; null at the end."""

    items: list[T]
    next_cursor: str | None = None
