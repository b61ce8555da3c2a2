"""Every deploy migrates the database before anything that uses it runs: the template's side of the migration
function, and what its package carries."""

from __future__ import annotations

import tomllib
from importlib import metadata
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from crosslist.cloudformation import ANSWER_RESERVE_SECONDS
from devstack.lambdas import load_module
from devstack.template import load_template
from tests.conftest import REPO
from tests.integration.test_template import _policy_documents, _references, _resources

MIGRATION_CODE = REPO / "functions" / "migrate"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(REPO / "template.yaml")


def _schema_resource(template: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = template["Resources"]["DatabaseSchema"]
    return resource


def test_the_schema_resource_is_served_by_the_migration_function_and_gives_up_after_it_would(
    template: dict[str, Any],
) -> None:
    schema = _schema_resource(template)
    assert schema["Type"] == "Custom::DatabaseSchema"
    properties = schema["Properties"]
    assert properties["ServiceToken"] == {"Ref": "MigrationFunction.Alias"}
    # With no answer (a crash), the deploy fails once the function cannot be running any more, not after an hour.
    timeout = int(template["Resources"]["MigrationFunction"]["Properties"]["Timeout"])
    assert timeout < int(properties["ServiceTimeout"]) <= 3600
    assert timeout > 2 * ANSWER_RESERVE_SECONDS  # time to work, and then to answer


def test_the_migration_runs_again_whenever_its_code_or_the_layer_changes(template: dict[str, Any]) -> None:
    # CloudFormation calls a custom resource on an Update only when its properties change: one of them is the
    # function's version, which SAM publishes anew when the function's code (the scripts with it), any of its
    # properties, or the layer (models, action catalogue) changes.
    function = template["Resources"]["MigrationFunction"]["Properties"]
    assert function["AutoPublishAlias"]
    assert function["AutoPublishAliasAllProperties"] is True
    assert template["Resources"]["SharedLayer"]["Properties"]["PublishLambdaVersion"] is True
    # The handler reads it by that name, to tell a rollback (an older version) from a deploy.
    version_property = load_module(MIGRATION_CODE).VERSION_PROPERTY
    assert _schema_resource(template)["Properties"][version_property] == {"Ref": "MigrationFunction.Version"}


def test_a_run_that_died_is_not_run_again_behind_cloudformations_back(template: dict[str, Any]) -> None:
    function = template["Resources"]["MigrationFunction"]["Properties"]
    assert function["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
    assert "Events" not in function  # only a deploy or an operator runs it


def _reads_the_database_secret(template: dict[str, Any], function_id: str) -> bool:
    return "DatabaseSecretArn" in set(_references(_policy_documents(template, function_id)))


def test_every_function_that_uses_postgresql_comes_after_the_migration(template: dict[str, Any]) -> None:
    functions = _resources(template, "AWS::Serverless::Function")
    users = {function_id for function_id in functions if _reads_the_database_secret(template, function_id)}
    assert "MigrationFunction" in users
    users.discard("MigrationFunction")
    assert len(users) >= 7
    # Created or updated only once the schema is there: their schedules, queues and routes cannot call them earlier.
    assert {
        function_id for function_id in users if "DatabaseSchema" not in _depends_on(functions[function_id])
    } == set()


def _depends_on(resource: dict[str, Any]) -> set[str]:
    value = resource.get("DependsOn", [])
    return {value} if isinstance(value, str) else set(value)


def test_the_migration_scripts_are_packaged_with_the_function() -> None:
    # sam build copies what a link points to: the function's package holds the repository's migrations/.
    scripts = MIGRATION_CODE / "migrations"
    assert scripts.resolve() == (REPO / "migrations").resolve()
    assert (scripts / "env.py").is_file()
    assert sorted(p.name for p in (scripts / "versions").glob("*.py")) == sorted(
        p.name for p in (REPO / "migrations" / "versions").glob("*.py")
    )


def _pins(path: str) -> dict[str, str]:
    lines = (REPO / path).read_text().splitlines()
    requirements = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {canonicalize_name(r.name): str(r.specifier).removeprefix("==") for r in requirements}


def test_the_function_ships_the_alembic_the_tests_run_and_the_layers_sqlalchemy() -> None:
    pins = _pins("functions/migrate/requirements.txt")
    # What alembic needs at run time, each at the version installed here (the one the tests run).
    needed = {"alembic", "mako", "markupsafe", "sqlalchemy", "typing-extensions"}
    assert set(pins) == needed
    assert {name: metadata.version(name) for name in needed} == pins
    assert pins["sqlalchemy"] == _pins("layers/shared/requirements.txt")["sqlalchemy"]
    dev = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    assert f"alembic=={pins['alembic']}" in dev


def test_no_other_function_nor_the_layer_ships_alembic() -> None:
    # Every other function's package and cold start stay as they were.
    shipped = {
        path.parent.name: set(_pins(str(path.relative_to(REPO))))
        for path in [*REPO.glob("functions/*/requirements.txt"), REPO / "layers/shared/requirements.txt"]
    }
    assert [name for name, pins in shipped.items() if "alembic" in pins] == ["migrate"]
