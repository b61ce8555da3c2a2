"""What gets deployed matches what is tested."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from crosslist.jobs.queue import message_group
from tests.conftest import REPO

# boto3, botocore and s3transfer come with the Lambda runtime: a copy in the layer would come first on
# the path and shadow the runtime's botocore while boto3 still came from the runtime. aws-xray-sdk (which
# pulled botocore in) cost 100-165 ms of every cold start; Lambda records the traces without it.
NOT_IN_LAYER = {"boto3", "botocore", "s3transfer", "aws-xray-sdk"}


def requirement_lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}


def test_the_layer_installs_the_runtime_dependencies_the_tests_use() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = set(project["dependencies"]) - {d for d in project["dependencies"] if d.startswith("boto3")}
    # boto3 is part of the Lambda runtime; the layer does not ship it.
    assert requirement_lines((REPO / "layers/shared/requirements.txt").read_text()) == runtime


def layer_requirements() -> list[Requirement]:
    return [Requirement(line) for line in requirement_lines((REPO / "layers/shared/requirements.txt").read_text())]


def installed_closure(requirements: list[Requirement]) -> set[str]:
    """The distributions these requirements pull in, from the metadata of the installed (pinned) versions."""
    found: set[str] = set()
    pending = [(requirement, "") for requirement in requirements]
    while pending:
        requirement, requested_by_extra = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": requested_by_extra}):
            continue
        name = canonicalize_name(requirement.name)
        distribution = metadata.distribution(name)
        assert distribution.version in requirement.specifier, (
            f"{name} {distribution.version} is installed, {requirement} is required: pip install -e '.[dev]'"
        )
        if name in found and not requirement.extras:
            continue
        found.add(name)
        for extra in ["", *requirement.extras]:
            pending.extend((Requirement(line), extra) for line in distribution.requires or [])
    return found


def test_the_layer_does_not_ship_what_the_lambda_runtime_provides() -> None:
    layer = installed_closure(layer_requirements())
    assert {"aws-lambda-powertools", "pydantic-core", "cryptography"} <= layer
    assert not layer & NOT_IN_LAYER


@pytest.mark.integration  # asks the package index (as `sam build` does): a few seconds
def test_pip_resolves_the_layer_without_the_runtime_provided_packages() -> None:
    completed = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"),
            *("--disable-pip-version-check", "--report", "-", "-r", "layers/shared/requirements.txt"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    resolved = {canonicalize_name(item["metadata"]["name"]) for item in report["install"]}
    assert "aws-lambda-powertools" in resolved
    assert not resolved & NOT_IN_LAYER


def test_every_dependency_is_pinned() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        assert re.fullmatch(r"[\w.\-\[\],]+==[\w.]+", requirement), requirement


def test_message_groups_keep_one_user_and_marketplace_together() -> None:
    assert message_group("alice", "vinted") == "alice:vinted"
    assert message_group("alice", "vinted") != message_group("alice", "ebay")
    odd = message_group("ålice with spaces", "vinted")
    assert re.fullmatch(r"[0-9a-f]{64}", odd)
    assert odd == message_group("ålice with spaces", "vinted")
