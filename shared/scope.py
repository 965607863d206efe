"""Branch scoping, the one rule every role's access follows: an object belongs to a caller's branch when the
object's organisation path (centre, office, agency point, unit) begins with the caller's organisation path,
compared segment by segment, exactly. Codes are never matched as patterns (no ``LIKE``), so ``YN-KM_1`` is
not a prefix of ``YN-KM-1`` nor of ``YN-KM_10``.

Three forms of the same rule: in Python (:func:`in_branch`), in SQL for a ``text[]`` path column
(:func:`array_in_branch`) and in SQL for a ``/``-joined text path (:func:`text_in_branch`, payments' copy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, and_, false, func, literal, or_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement


def in_branch(path: Sequence[str], branch: Sequence[str]) -> bool:
    """True when ``path`` starts with every segment of ``branch`` (an empty branch holds nothing)."""
    return bool(branch) and len(path) >= len(branch) and tuple(path[: len(branch)]) == tuple(branch)


def array_in_branch(column: Any, branch: Sequence[str]) -> ColumnElement[bool]:
    """SQL: ``column[1:n] = ARRAY[branch]`` for a ``text[]`` path column."""
    if not branch:
        return false()
    return and_(func.cardinality(column) >= len(branch),
                column[1: len(branch)] == literal(list(branch), ARRAY(String)))


def text_path(path: Sequence[str]) -> str:
    """``/centre/office/agency/unit``: the text form of a path (payments keeps its payees' paths so)."""
    return "/" + "/".join(path)


def text_in_branch(column: Any, branch: Sequence[str]) -> ColumnElement[bool]:
    """SQL for a ``/``-joined text path: equal to the branch's path, or beginning with it and a ``/``.
    Compared with ``=`` on a prefix (``left``), never ``LIKE``: ``_`` and ``%`` in codes are plain characters."""
    if not branch:
        return false()
    prefix = text_path(branch)
    return or_(column == prefix, func.left(column, len(prefix) + 1) == prefix + "/")
