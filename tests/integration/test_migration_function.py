"""The migration function as a deploy runs it: CloudFormation's request in, the answer PUT to the response URL,
against a real PostgreSQL database of its own (and moto's Secrets Manager for the secret)."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from moto import mock_aws
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

from crosslist import runtime
from crosslist.db.migrate import MIGRATION_LOCK_KEY, MigrationFailed, migrate_to_head
from crosslist.db.models import Base
from devstack.lambdas import LambdaContext, load_handler
from tests.conftest import REPO
from tests.support.cloudformation import (
    MIGRATION_FUNCTION,
    MIGRATION_TIMEOUT_S,
    ResponseUrl,
    deploy_in_another_process,
    request,
    response_url,
)
from tests.support.databases import drop_database, empty_database

pytestmark = pytest.mark.integration

DATABASE = "crosslist_migration_function"
PASSWORD = "pw-that-must-not-show"


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(REPO / "migrations"))
    return str(ScriptDirectory.from_config(config).get_current_head())


HEAD = head_revision()


@pytest.fixture
def scratch_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """An empty database of its own, which the function under test is configured to migrate (DATABASE_URL)."""
    url = empty_database(database_url, DATABASE)
    monkeypatch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
    runtime.reset()
    engine = create_engine(url)
    yield engine
    engine.dispose()
    runtime.reset()
    drop_database(database_url, DATABASE)


@pytest.fixture
def cloudformation() -> Iterator[ResponseUrl]:
    with response_url() as recorder:
        yield recorder


def deploy(event: dict[str, Any], timeout_seconds: float = MIGRATION_TIMEOUT_S) -> dict[str, Any]:
    handler = load_handler(MIGRATION_FUNCTION)
    result: dict[str, Any] = handler(event, LambdaContext("migrate", timeout_seconds=timeout_seconds))
    return result


def revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return str(connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one())


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def unreachable_url() -> str:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql+pg8000://crosslist:{PASSWORD}@127.0.0.1:{port}/crosslist"


# --------------------------------------------------------------------- a deploy that migrates


def test_a_first_deploy_brings_an_empty_database_to_head_and_tells_cloudformation(
    scratch_database: Engine, cloudformation: ResponseUrl
) -> None:
    deploy(request("Create", cloudformation.url()))

    answer = cloudformation.only_answer()
    assert answer.status == "SUCCESS", answer.reason
    assert answer.data == {
        "Revision": HEAD,
        "PreviousRevision": "",
        "Applied": ",".join(f"{n:04d}" for n in range(1, int(HEAD) + 1)),
    }
    # The answer echoes the request, under the id CloudFormation will send back in Updates and the Delete.
    sent = request("Create", cloudformation.url())
    assert answer.body["PhysicalResourceId"] == "crosslist-database-schema"
    assert answer.body["StackId"] == sent["StackId"]
    assert answer.body["LogicalResourceId"] == "DatabaseSchema"
    # The URL is signed for an empty Content-Type: any other would be refused by S3.
    assert answer.content_type == ""
    assert revision(scratch_database) == HEAD
    assert tables(scratch_database) == set(Base.metadata.tables)


def test_a_deploy_on_a_current_schema_changes_nothing(scratch_database: Engine, cloudformation: ResponseUrl) -> None:
    deploy(request("Create", cloudformation.url("first")))
    # Record every DDL statement from now on.
    with scratch_database.begin() as connection:
        connection.execute(text("CREATE TABLE ddl_seen (command_tag text)"))
        connection.execute(
            text(
                "CREATE FUNCTION record_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$"
                " BEGIN INSERT INTO ddl_seen VALUES (tg_tag); END $$"
            )
        )
        connection.execute(text("CREATE EVENT TRIGGER record_ddl ON ddl_command_start EXECUTE FUNCTION record_ddl()"))

    deploy(request("Update", cloudformation.url("second"), "crosslist-database-schema"))

    second = cloudformation.answers[-1]
    assert second.status == "SUCCESS", second.reason
    assert second.data == {"Revision": HEAD, "PreviousRevision": HEAD, "Applied": ""}
    assert second.body["PhysicalResourceId"] == "crosslist-database-schema"
    with scratch_database.connect() as connection:
        assert connection.execute(text("SELECT command_tag FROM ddl_seen")).scalars().all() == []


def test_two_deploys_at_once_take_turns_and_only_one_migrates(
    scratch_database: Engine, cloudformation: ResponseUrl
) -> None:
    spawn = multiprocessing.get_context("spawn")
    started: Any = spawn.Queue()
    url = os.environ["DATABASE_URL"]
    with scratch_database.connect() as holder:
        # Held until both runs are about to start: they then race for it.
        holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        runs = [
            spawn.Process(target=deploy_in_another_process, args=(url, cloudformation.url(f"run-{n}"), started))
            for n in (1, 2)
        ]
        for run in runs:
            run.start()
        for _ in runs:
            started.get(timeout=60)
        time.sleep(0.5)  # both are waiting for the lock now
        holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
        holder.commit()
    for run in runs:
        run.join(timeout=120)
        assert run.exitcode == 0

    answers = sorted(cloudformation.answers, key=lambda answer: answer.path)
    assert [answer.path for answer in answers] == ["/run-1", "/run-2"]
    assert [answer.status for answer in answers] == ["SUCCESS", "SUCCESS"], [a.reason for a in answers]
    assert {answer.data["Revision"] for answer in answers} == {HEAD}
    # One applied every migration; the other waited for it, then found the schema current.
    assert sorted(answer.data["PreviousRevision"] for answer in answers) == ["", HEAD]
    assert revision(scratch_database) == HEAD


def test_a_run_by_hand_returns_what_it_did(scratch_database: Engine) -> None:
    # `make migrate` / `sam remote invoke MigrationFunction` send an empty event.
    first = deploy({})
    again = deploy({})

    assert first["revision"] == HEAD
    assert first["previous_revision"] is None
    assert first["applied"][-1] == HEAD
    assert again == {"revision": HEAD, "previous_revision": HEAD, "applied": [], "schema_differences": []}


# --------------------------------------------------------------------- a deploy that must fail, and says why


def test_a_database_ahead_of_the_code_fails_the_deploy_and_is_left_as_it_is(
    scratch_database: Engine, cloudformation: ResponseUrl
) -> None:
    deploy(request("Create", cloudformation.url("first")))
    with scratch_database.begin() as connection:  # a newer release migrated it
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))

    deploy(request("Update", cloudformation.url("second"), "crosslist-database-schema"))

    answer = cloudformation.answers[-1]
    assert answer.status == "FAILED"
    assert "at revision 0099, which this code does not know" in answer.reason
    assert answer.body["PhysicalResourceId"] == "crosslist-database-schema"
    assert revision(scratch_database) == "0099"  # not downgraded
    assert tables(scratch_database) == set(Base.metadata.tables)


def test_a_database_missing_a_column_the_code_uses_fails_the_deploy(
    scratch_database: Engine, cloudformation: ResponseUrl
) -> None:
    deploy(request("Create", cloudformation.url("first")))
    with scratch_database.begin() as connection:  # altered by hand
        connection.execute(text("ALTER TABLE products DROP COLUMN brand"))

    deploy(request("Update", cloudformation.url("second"), "crosslist-database-schema"))

    answer = cloudformation.answers[-1]
    assert answer.status == "FAILED"
    assert "still lacks what the code uses: column products.brand" in answer.reason


def test_an_unreachable_database_fails_the_deploy_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, cloudformation: ResponseUrl
) -> None:
    monkeypatch.setenv("DATABASE_URL", unreachable_url())
    runtime.reset()

    result = deploy(request("Create", cloudformation.url()))

    answer = cloudformation.only_answer()
    assert answer.status == "FAILED"
    assert answer.reason.startswith("cannot connect to the database at 127.0.0.1:")
    assert "(log stream local)" in answer.reason
    assert PASSWORD not in answer.reason
    assert result["Status"] == "FAILED"  # the invocation itself succeeds: CloudFormation has its answer
    runtime.reset()


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (None, "the database's URL could not be read (its secret)"),
        (f"host=db user=crosslist password={PASSWORD}", "the database's secret does not hold a SQLAlchemy URL"),
        (f"postgresql://crosslist:{PASSWORD}@db/crosslist", "the database's secret holds a postgresql URL"),
    ],
    ids=["missing", "not-a-url", "another-driver"],
)
def test_a_wrong_database_secret_fails_the_deploy_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, cloudformation: ResponseUrl, secret: str | None, reason: str
) -> None:
    with mock_aws():
        secrets = boto3.client("secretsmanager")
        arn = (
            secrets.create_secret(Name="crosslist-db", SecretString=secret)["ARN"]
            if secret is not None
            else "arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-secret-AbCdEf"
        )
        monkeypatch.delenv("DATABASE_URL", raising=False)
        monkeypatch.setenv("DATABASE_SECRET_ARN", arn)
        runtime.reset()

        deploy(request("Create", cloudformation.url()))

    answer = cloudformation.only_answer()
    assert answer.status == "FAILED"
    assert answer.reason.startswith(reason), answer.reason
    assert PASSWORD not in answer.reason
    runtime.reset()


def test_waiting_for_a_stuck_run_ends_in_time_to_answer_before_the_timeout(
    scratch_database: Engine, cloudformation: ResponseUrl
) -> None:
    timeout_s = 20.0  # 5 s to work, then 15 s to answer: the lock is waited for 2.5 s
    with scratch_database.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        started = time.monotonic()
        deploy(request("Create", cloudformation.url()), timeout_seconds=timeout_s)
        took = time.monotonic() - started

    answer = cloudformation.only_answer()
    assert answer.status == "FAILED"
    assert re.match(r"another migration run held the migration lock for \d+ s: nothing was changed", answer.reason)
    assert took < timeout_s - 10
    assert revision(scratch_database) is None


def test_a_run_that_runs_out_of_time_stops_half_way_and_changes_nothing(scratch_database: Engine) -> None:
    # A clock that moves a second per look: the deadline comes in the middle of the migrations' statements.
    ticks = itertools.count()

    with pytest.raises(MigrationFailed, match="out of time: the migration could not finish before"):
        migrate_to_head(runtime.database_url, REPO / "migrations", deadline=60, clock=lambda: float(next(ticks)))

    assert revision(scratch_database) is None
    assert tables(scratch_database) == set()


def test_the_migration_connects_as_the_functions_do_never_in_clear_text(
    scratch_database: Engine, cloudformation: ResponseUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROSSLIST_DATABASE_SSLMODE", "verify-full")  # as deployed: the test server has no TLS

    deploy(request("Create", cloudformation.url()))

    answer = cloudformation.only_answer()
    assert answer.status == "FAILED"
    assert answer.reason.startswith(f"cannot connect to the database at 127.0.0.1:{scratch_database.url.port}/")
    assert "SSL" in answer.reason
    assert revision(scratch_database) is None


def test_a_run_by_hand_that_fails_raises_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", unreachable_url())
    runtime.reset()

    with pytest.raises(MigrationFailed, match="cannot connect to the database"):
        deploy({})
    runtime.reset()


# --------------------------------------------------------------------- the stack goes


def test_delete_answers_success_at_once_without_the_database(
    monkeypatch: pytest.MonkeyPatch, cloudformation: ResponseUrl
) -> None:
    # No database can be reached, nor a secret read: a Delete never tries.
    monkeypatch.setenv("DATABASE_URL", unreachable_url())
    monkeypatch.setenv("DATABASE_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AbCdEf")
    runtime.reset()

    deploy(request("Delete", cloudformation.url(), "crosslist-database-schema"))

    answer = cloudformation.only_answer()
    assert answer.status == "SUCCESS"
    assert answer.body["PhysicalResourceId"] == "crosslist-database-schema"
    assert answer.data == {}
    runtime.reset()


def test_a_rollback_to_the_previous_release_leaves_the_schema_migrated(
    scratch_database: Engine, cloudformation: ResponseUrl
) -> None:
    deploy(request("Create", cloudformation.url("deploy")))
    with scratch_database.begin() as connection:  # as the previous release's code would see it: ahead of it
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    event = request("Update", cloudformation.url("rollback"), "crosslist-database-schema")
    # CloudFormation puts the previous deploy's properties back: an older version of the function.
    event["ResourceProperties"], event["OldResourceProperties"] = (
        event["OldResourceProperties"],
        event["ResourceProperties"],
    )

    deploy(event)

    answer = cloudformation.answers[-1]
    assert answer.status == "SUCCESS", answer.reason  # never UPDATE_ROLLBACK_FAILED over a schema ahead of the code
    assert answer.body["PhysicalResourceId"] == "crosslist-database-schema"
    assert revision(scratch_database) == "0099"
