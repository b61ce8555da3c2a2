"""What gets deployed matches what is tested."""

from __future__ import annotations

import re
import tomllib

from crosslist.jobs.queue import message_group
from tests.conftest import REPO


def requirement_lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}


def test_the_layer_installs_the_runtime_dependencies_the_tests_use() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = set(project["dependencies"]) - {d for d in project["dependencies"] if d.startswith("boto3")}
    # boto3 is part of the Lambda runtime; the layer does not ship it.
    assert requirement_lines((REPO / "layers/shared/requirements.txt").read_text()) == runtime


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
