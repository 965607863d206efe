"""A client generated from the services' OpenAPI documents type-checks against, and runs, the e2e flow (issue #10):
what a mobile team would do with our documents alone.

The documents are the apps' own ``openapi()``; datamodel-code-generator turns each into a module of Pydantic
models (package ``huzhu_client``); ``mypy --strict`` checks ``client_flow.py`` against them, and the flow runs
against the live stack with every answer parsed by the generated models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from deploy.client import wait_for
from deploy.localstack import Stack
from tests.e2e.conftest import World
from tests.unit.test_openapi_typed import openapi

pytestmark = pytest.mark.e2e
FLOW = Path(__file__).with_name("client_flow.py")
CLIENT_SERVICES = ("enrollment", "claims", "payments")


@pytest.fixture(scope="module")
def client_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("generated")
    package = root / "huzhu_client"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "py.typed").write_text("")
    for service in CLIENT_SERVICES:
        document = root / f"{service}.json"
        document.write_text(json.dumps(openapi(service)), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "datamodel_code_generator", "--input", str(document), "--input-file-type",
             "openapi", "--output", str(package / f"{service}.py"), "--output-model-type", "pydantic_v2.BaseModel",
             "--use-annotated", "--formatters", "black"],
            capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    return root


def mypy(flow: Path, client: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MYPYPATH": str(client)}
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent",
         "--disable-error-code=import-untyped", str(flow)],
        capture_output=True, text=True, env=env, timeout=600, cwd=Path(__file__).parents[2])


def test_the_flow_type_checks_against_the_generated_client(client_dir: Path) -> None:
    done = mypy(FLOW, client_dir)
    assert done.returncode == 0, done.stdout[-4000:]


def test_a_field_the_documents_do_not_declare_fails_the_type_check(client_dir: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "client_flow_wrong.py"
    wrong.write_text(FLOW.read_text(encoding="utf-8").replace("claim.approval.current_level", "claim.approval.current_tier"),
                     encoding="utf-8")
    done = mypy(wrong, client_dir)
    assert done.returncode != 0 and '"ApprovalOut" has no attribute "current_tier"' in done.stdout, done.stdout[-2000:]


def test_the_flow_runs_against_the_stack_with_every_answer_parsed_by_the_generated_models(
        stack: Stack, world: World, client_dir: Path) -> None:
    import random

    from deploy.people import person

    sys.path.insert(0, str(client_dir))
    try:
        from huzhu_client import claims  # type: ignore[import-not-found]

        from tests.e2e import client_flow
    finally:
        sys.path.remove(str(client_dir))
    rng = random.Random(f"generated-{uuid.uuid4().hex}")
    people = [person(rng) for _ in range(2)]
    reviewers = {claims.OrgLevel.agency_point: "agency", claims.OrgLevel.office: "office",
                 claims.OrgLevel.centre: "centre"}
    unit = world.unit.replace("-U1", "-U2")

    def wait(what: str, probe: Any) -> Any:
        return wait_for(what, probe, timeout=120)

    result = client_flow.run_flow(world.login("agent2"), world.login("finance"), world.login, world.period, unit,
                                  people, f"S-GEN-{uuid.uuid4().hex[:10]}", reviewers, wait)
    assert result.roster.members == 2
    assert result.claim.aid_amount is not None
    [instruction] = result.instructions
    assert instruction.amount == result.claim.aid_amount.root and instruction.claim_id == result.claim.claim_id
