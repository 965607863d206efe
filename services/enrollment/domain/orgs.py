"""The union hierarchy's rules (seed 003 第十条: 基层工会 -> 代办点 -> 办事处 -> 中心), pure: no I/O.

- ``org_path``: where a new organisation sits, given its parent; the centre has none, every other level sits
  directly under the level above it.
- ``staff_org_problem``: a staff account belongs to an organisation of the level its role works at.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.vocab import ORG_LEVELS, OrgLevel, Role

#: The level of organisation each staff role works at (admin and finance may sit anywhere; members nowhere).
ROLE_LEVEL: dict[Role, OrgLevel] = {
    Role.CENTRE_REVIEWER: OrgLevel.CENTRE, Role.OFFICE_REVIEWER: OrgLevel.OFFICE,
    Role.AGENCY_REVIEWER: OrgLevel.AGENCY_POINT, Role.UNIT_AGENT: OrgLevel.UNIT,
}


@dataclass(frozen=True)
class OrgProblem:
    field: str  # the body field at fault
    msg: str  # for people, in Chinese
    code: str
    detail: str


def parent_level(level: OrgLevel) -> OrgLevel | None:
    index = ORG_LEVELS.index(level)
    return ORG_LEVELS[index - 1] if index else None


def org_path(code: str, level: OrgLevel, parent_named: bool,
             parent: tuple[OrgLevel, list[str]] | None) -> list[str] | OrgProblem:
    """The path of a new organisation ``code`` at ``level`` under ``parent`` (its level and path; None when none
    was named or the named one does not exist), or why it cannot be made."""
    above = parent_level(level)
    if above is None:
        if parent_named:
            return OrgProblem("parent", "必须为空", "validation_failed", "互助中心是最高一级，不能有上级。")
        return [code]
    if parent is None:
        return OrgProblem("parent", "不存在", "parent_not_found", "上级组织不存在。")
    if parent[0] != above:
        return OrgProblem("parent", "上级层级不符", "bad_parent_level", f"{level} 的上级必须是 {above}。")
    return [*parent[1], code]


def staff_org_problem(role: Role, org_level: OrgLevel | None) -> OrgProblem | None:
    """Why a staff account of ``role`` cannot belong to an organisation of ``org_level`` (None: no org)."""
    if role in (Role.ADMIN, Role.MEMBER):
        return None
    if org_level is None:
        return OrgProblem("org", "组织不存在", "org_required", "员工必须属于一个组织。")
    needed = ROLE_LEVEL.get(role)
    if needed is not None and org_level != needed:
        return OrgProblem("org", "组织层级与角色不符", "role_level_mismatch", f"角色 {role} 必须属于 {needed} 级组织。")
    return None
