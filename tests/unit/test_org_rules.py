"""The hierarchy's rules (services/enrollment/domain/orgs.py, seed 003 第十条), as tables."""

from __future__ import annotations

import pytest

from services.enrollment.domain.orgs import OrgProblem, org_path, staff_org_problem
from shared.vocab import OrgLevel, Role

C, OF, A, U = OrgLevel.CENTRE, OrgLevel.OFFICE, OrgLevel.AGENCY_POINT, OrgLevel.UNIT


@pytest.mark.parametrize(("level", "named", "parent", "expected"), [
    (C, False, None, ["NEW"]),
    (C, True, None, "validation_failed"),  # the centre has no parent, not even an unknown one
    (C, True, (C, ["ZX"]), "validation_failed"),
    (OF, False, (C, ["ZX"]), ["ZX", "NEW"]),
    (OF, True, None, "parent_not_found"),
    (A, True, (OF, ["ZX", "BSC"]), ["ZX", "BSC", "NEW"]),
    (U, True, (A, ["ZX", "BSC", "DBD"]), ["ZX", "BSC", "DBD", "NEW"]),
    (U, True, (OF, ["ZX", "BSC"]), "bad_parent_level"),  # a unit sits under an agency point, not an office
    (A, True, (C, ["ZX"]), "bad_parent_level"),
])
def test_a_new_org_sits_directly_under_the_level_above(level: OrgLevel, named: bool,
                                                        parent: tuple[OrgLevel, list[str]] | None,
                                                        expected: list[str] | str) -> None:
    result = org_path("NEW", level, named, parent)
    if isinstance(expected, str):
        assert isinstance(result, OrgProblem) and result.code == expected and result.field == "parent"
    else:
        assert result == expected


@pytest.mark.parametrize(("role", "level", "expected"), [
    (Role.ADMIN, None, None), (Role.MEMBER, None, None), (Role.FINANCE, C, None), (Role.FINANCE, OF, None),
    (Role.FINANCE, None, "org_required"), (Role.UNIT_AGENT, U, None), (Role.UNIT_AGENT, A, "role_level_mismatch"),
    (Role.AGENCY_REVIEWER, A, None), (Role.OFFICE_REVIEWER, OF, None), (Role.OFFICE_REVIEWER, C, "role_level_mismatch"),
    (Role.CENTRE_REVIEWER, C, None), (Role.BUREAU, None, "org_required"),
])
def test_a_staff_account_belongs_to_an_org_of_its_roles_level(role: Role, level: OrgLevel | None,
                                                              expected: str | None) -> None:
    problem = staff_org_problem(role, level)
    assert (problem.code if problem else None) == expected
