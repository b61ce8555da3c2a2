"""docs/websocket-protocol.md is the protocol's one source of truth: the backend's message builders
(crosslist.realtime.messages, and the job fields of jobs.active) produce exactly the fields its tables
name, and ws_message reads exactly the actions it shows. The TypeScript client checks its own types
against the same tables (clients/ts/test/unit/protocol-document.test.ts)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from crosslist.db.models import JobStatus, MarketplaceJob
from crosslist.jobs.session import _state
from crosslist.marketplaces.vinted.publish import VintedPublish
from crosslist.realtime import messages, sessions
from crosslist.realtime.messages import PluginCommand, PluginStatusMessage
from tests.conftest import REPO
from tests.support.products import vinted_product

DOCUMENT = REPO / "docs" / "websocket-protocol.md"
NOW = datetime(2030, 6, 3, 9, 0, tzinfo=UTC)


def without_parentheses(text: str) -> str:
    """The text outside (nested) parentheses: what a field's explanation says is not a field of the message."""
    kept, depth = [], 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            kept.append(char)
    return "".join(kept)


def parenthesized_after(text: str, name: str) -> str:
    """What the parentheses right after `name` say (nested ones included)."""
    start = text.index(f"`{name}` (") + len(name) + 4
    depth = 1
    for end in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[end], 0)
        if depth == 0:
            return text[start:end]
    raise AssertionError(f"unbalanced parentheses after {name}")


def names(text: str) -> list[str]:
    """The field names `quoted` in the text, outside parentheses."""
    return re.findall(r"`([a-z_]+)`", without_parentheses(text))


def section(title: str) -> str:
    text = DOCUMENT.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def documented_server_messages() -> dict[str, list[str]]:
    """type -> fields, from the table of "Backend → web app"."""
    table = {}
    for line in section("Backend → web app").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`[a-z_.]+`", cells[0]):
            table[cells[0].strip("`")] = names(cells[2])
    return table


def documented_job_fields() -> list[str]:
    """The fields of each job of jobs.active (in the parentheses after `jobs`)."""
    line = next(line for line in section("Backend → web app").splitlines() if line.startswith("| `jobs.active`"))
    listed = parenthesized_after(line, "jobs")
    return names(listed.split(":", 1)[1])


def documented_client_messages() -> list[dict[str, Any]]:
    """The example messages of "Web app → backend" ("…" stands for any value)."""
    block = section("Web app → backend").split("```json\n", 1)[1].split("```", 1)[0]
    examples = []
    for line in block.strip().splitlines():
        readable = line.replace("{…}", "{}").replace("…", "")
        examples.append(json.loads(readable))
    return examples


PROGRESS = messages.progress_message("j1", "upload_photo_1", 1, 3, "photo 1 of 2 uploaded", batch_id=None)

# One builder per message type, called with every optional part.
BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "plugin.command": lambda: messages.command_message(
        "r1", "j1", "upload_photo_2", PluginCommand(method="POST", path="/api/v2/photos"), 60_000, progress=PROGRESS
    ),
    "job.progress": lambda: PROGRESS,
    "batch.progress": lambda: messages.batch_progress_message("b1", {"completed": 1, "running": 1}),
    "job.completed": lambda: messages.completed_message("j1", {"item_id": "1", "url": "https://vinted.example/1"}),
    "job.retrying": lambda: messages.retrying_message("j1", 2, NOW, {"code": "plugin_timeout", "message": "late"}),
    "job.waiting": lambda: messages.waiting_message("j1", "rate_limited", NOW),
    "job.failed": lambda: messages.failed_message("j1", {"code": "vinted_refused", "message": "no"}),
    "jobs.active": lambda: messages.active_jobs_message([], truncated=False),
    "plugin.status": lambda: messages.plugin_status_message(
        PluginStatusMessage(action="plugin_status", ready=True, extension_version="1.4.2")
    ),
    "listing.sold": lambda: messages.listing_sold_message(
        "vinted", "p1", external_id="4242", order_id="700001", price="27.90", currency="EUR"
    ),
    "marketplace.reauth_required": lambda: messages.reauth_required_message("ebay"),
    "job.cancelled": lambda: messages.cancelled_message("j1"),
    "error": lambda: messages.error_message("forbidden", "not yours", "r1"),
    "pong": messages.pong_message,
}


def test_the_document_names_every_message_the_backend_builds_and_no_other() -> None:
    assert sorted(documented_server_messages()) == sorted(BUILDERS)


def test_each_message_has_exactly_the_documented_fields() -> None:
    for message_type, fields in documented_server_messages().items():
        built = BUILDERS[message_type]()
        assert built["type"] == message_type
        assert sorted(set(built) - {"type"}) == sorted(fields), message_type


def test_a_command_without_progress_has_the_documented_fields_but_progress() -> None:
    command = messages.command_message("r1", "j1", "create_item", PluginCommand(method="POST", path="/x"), 1000)
    assert sorted(set(command) - {"type"}) == sorted(set(documented_server_messages()["plugin.command"]) - {"progress"})


def test_each_job_of_jobs_active_has_exactly_the_documented_fields() -> None:
    product = vinted_product(2, id=str(uuid.uuid4()))
    job = MarketplaceJob(
        id=uuid.uuid4(),
        user_id="alice",
        marketplace="vinted",
        action_code="publish",
        product_id=uuid.UUID(product.id),
        batch_id=None,
        status=JobStatus.WAITING,
        attempts=1,
        max_attempts=3,
        current_step=1,
        total_steps=3,
        input=VintedPublish().prepare(product),
        error={"code": "plugin_timeout", "message": "no answer"},
        wait_reason="backoff",
        wait_until=NOW,
        cancel_requested_at=None,
    )
    shown = _state(job, None)
    assert sorted(shown) == sorted(documented_job_fields())
    assert shown["step"] == "upload_photo_2"


def test_ws_message_reads_exactly_the_documented_actions_with_the_documented_fields() -> None:
    examples = documented_client_messages()
    assert {example["action"] for example in examples} == set(sessions._MESSAGES)
    for example in examples:
        model = sessions._MESSAGES[example["action"]]
        assert set(example) <= set(model.model_fields), example
