"""The event-driven engine end to end (real PostgreSQL, moto's SQS and DynamoDB, the real handlers):
never a duplicate write, crashes at any point, throttled lanes, priorities, pacing, cancel mid-batch."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from crosslist.jobs.engine import LaneEngine
from tests.integration.conftest import Backend, count

pytestmark = pytest.mark.integration


class Killed(BaseException):
    """process_job killed (a timeout, an out-of-memory): no handler code runs after it."""


def run_with_kills(backend: Backend, max_rounds: int = 100) -> int:
    """Run the queues; a killed invocation's message comes back when its visibility times out (made
    immediate here). Returns how many invocations were killed."""
    kills = 0
    for _ in range(max_rounds):
        try:
            backend.run_queue(wait_timers=3)
        except Killed:
            kills += 1
            for message in backend.delivering:
                backend.sqs.change_message_visibility(
                    QueueUrl=backend.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            continue
        if not backend.active_jobs():
            return kills
    return kills


def test_a_create_whose_reply_was_lost_but_landed_is_found_in_the_wardrobe_not_created_again(
    backend: Backend, short_plugin_timeout: int, sql: Any
) -> None:
    tab, vinted = backend.open_tab(lose_reply={"create_item"})
    job_id = backend.publish(backend.create_product(images=2)["id"]).body["id"]

    backend.run_queue(wait_timers=30)

    job = backend.job(job_id)
    assert job["status"] == "completed"
    assert len(vinted.items) == 1  # never a second listing
    assert job["result"]["item_id"] == str(vinted.items[0]["id"])
    steps = [(c["step"], c["method"]) for c in vinted.commands]
    assert steps == [
        ("upload_photo_1", "POST"),
        ("upload_photo_2", "POST"),
        ("create_item", "POST"),  # landed, its reply lost: the step timed out
        ("create_item", "GET"),  # the wardrobe, before anything is sent again
    ]
    assert [m["error"]["code"] for m in backend.gateway.of_type(tab, "job.retrying")] == ["plugin_timeout"]
    assert count(sql, "SELECT count(*) FROM marketplace_listings") == 1


@pytest.mark.parametrize("point", ["step_boundary", "before_sending", "after_sending"])
def test_killing_process_job_at_every_step_still_publishes_exactly_three_photos_and_one_item(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, short_plugin_timeout: int, point: str
) -> None:
    tab, vinted = backend.open_tab()
    killed_at: set[str] = set()
    carry_out = LaneEngine._carry_out
    send = LaneEngine._send

    def kill_once(key: str) -> None:
        if key not in killed_at:
            killed_at.add(key)
            raise Killed(key)

    def carry_out_or_die(self: LaneEngine, user_id: str, marketplace: str, turn: Any) -> bool:
        progress = [m for m in turn.messages if m["type"] == "job.progress"]
        boundary = progress and not any(m["type"] == "job.completed" for m in turn.messages)
        if point == "step_boundary" and boundary:  # the step's progress is committed, nothing after it ran
            kill_once(f"after {progress[0]['step']}")
        if point == "before_sending" and turn.send is not None and turn.send.step == "create_item":
            kill_once("before create_item")  # committed as in flight, never sent
        return carry_out(self, user_id, marketplace, turn)

    def send_then_die(self: LaneEngine, user_id: str, marketplace: str, command: Any, progress: Any) -> bool:
        gone = send(self, user_id, marketplace, command, progress)
        if point == "after_sending":
            kill_once(f"after sending {command.step}")
        return gone

    monkeypatch.setattr(LaneEngine, "_carry_out", carry_out_or_die)
    monkeypatch.setattr(LaneEngine, "_send", send_then_die)
    job_id = backend.publish(backend.create_product(images=3)["id"]).body["id"]

    kills = run_with_kills(backend)

    job = backend.job(job_id)
    assert job["status"] == "completed", job
    assert kills == {"step_boundary": 3, "before_sending": 1, "after_sending": 4}[point]
    assert len(vinted.items) == 1
    assert len(vinted.items[0]["photo_ids"]) == 3
    assert len(job["result"]["photo_ids"]) == 3
    assert [m["job_id"] for m in backend.gateway.of_type(tab, "job.completed")] == [job_id]


def test_a_429_pauses_the_lane_tells_the_user_until_when_and_resumes_without_using_an_attempt(
    backend: Backend, settings: Callable[..., None]
) -> None:
    settings(throttle_pause="1")
    tab, vinted = backend.open_tab(throttle_once={"upload_photo_2"})
    first = backend.publish(backend.create_product(images=2)["id"]).body["id"]
    second = backend.publish(backend.create_product(images=1)["id"]).body["id"]

    backend.run_queue()  # up to the 429

    job = backend.job(first)
    assert (job["status"], job["wait_reason"]) == ("waiting", "rate_limited")
    [waiting] = backend.gateway.of_type(tab, "job.waiting")
    assert (waiting["job_id"], waiting["reason"]) == (first, "rate_limited")
    assert waiting["until"] is not None
    assert backend.job(second)["status"] == "pending"  # the whole lane pauses

    backend.run_queue(wait_timers=30)

    assert [backend.job(job_id)["status"] for job_id in (first, second)] == ["completed", "completed"]
    assert backend.job(first)["attempts"] == 1
    assert [c["step"] for c in vinted.commands] == [
        "upload_photo_1",
        "upload_photo_2",
        "upload_photo_2",
        "create_item",
        "upload_photo_1",
        "create_item",
    ]


def test_a_bot_challenge_pauses_the_lane_longer_than_a_429(backend: Backend, settings: Callable[..., None]) -> None:
    settings(throttle_pause="1", challenge_pause="2")
    tab, _ = backend.open_tab(challenge_once={"upload_photo_1"})
    job_id = backend.publish(backend.create_product(images=1)["id"]).body["id"]

    challenged_at = datetime.now(UTC)
    backend.run_queue()

    job = backend.job(job_id)
    assert (job["status"], job["wait_reason"], job["error"]["code"]) == ("waiting", "challenge", "challenge")
    [waiting] = backend.gateway.of_type(tab, "job.waiting")
    assert waiting["reason"] == "challenge"
    assert datetime.fromisoformat(waiting["until"]) - challenged_at >= timedelta(seconds=1.9)  # not the 429's 1 s
    backend.run_queue(wait_timers=30)
    assert backend.job(job_id)["status"] == "completed"


def test_a_vinted_session_that_expired_parks_the_lane_until_the_extension_is_logged_in_again(
    backend: Backend,
) -> None:
    tab, vinted = backend.open_tab(logged_out_once={"create_item"})
    job_id = backend.publish(backend.create_product(images=1)["id"]).body["id"]

    backend.run_queue()

    job = backend.job(job_id)
    assert (job["status"], job["wait_reason"], job["attempts"]) == ("waiting_for_plugin", "plugin_logged_out", 1)
    backend.plugin_status(tab, ready=True, vinted_user_id=vinted.vinted_user_id)
    backend.run_queue()
    assert backend.job(job_id)["status"] == "completed"


def test_jobs_of_a_lane_run_by_priority_then_age_and_two_users_lanes_interleave(backend: Backend) -> None:
    alice_tab, alice_vinted = backend.open_tab("alice")
    bob_tab, bob_vinted = backend.open_tab("bob")
    commands: list[str] = []  # whose command, in the order they were sent

    def recording(user: str, vinted: Any) -> Callable[[dict[str, Any]], None]:
        def listener(message: dict[str, Any]) -> None:
            if message.get("type") == "plugin.command":
                commands.append(user)
            vinted(message)

        return listener

    backend.gateway.listeners[alice_tab] = recording("alice", alice_vinted)
    backend.gateway.listeners[bob_tab] = recording("bob", bob_vinted)
    priorities = [5, 9, 1, 5, 3, 9]
    created: dict[str, list[tuple[int, str]]] = {"alice": [], "bob": []}
    for priority in priorities:
        for user in ("alice", "bob"):
            product = backend.create_product(user=user, images=1)["id"]
            created[user].append((priority, backend.publish(product, user=user, priority=priority).body["id"]))

    backend.run_queue()

    for user, tab in (("alice", alice_tab), ("bob", bob_tab)):
        completed = [m["job_id"] for m in backend.gateway.of_type(tab, "job.completed")]
        # sorted() is stable: equal priorities keep their creation order.
        assert completed == [job_id for _, job_id in sorted(created[user], key=lambda pair: pair[0])]
    assert len(commands) == 24
    # Neither lane waits for the other to finish: bob's work starts before alice's ends.
    assert commands.index("bob") < len(commands) - 1 - commands[::-1].index("alice")
    assert commands.index("alice") < len(commands) - 1 - commands[::-1].index("bob")


def test_a_publish_waiting_out_a_backoff_lets_a_priority_1_delete_complete_first(
    backend: Backend, settings: Callable[..., None]
) -> None:
    settings(backoff="4,4,4")  # room for the delete to be queued and run while the publish backs off
    tab, vinted = backend.open_tab()
    sold = backend.create_product(images=1)["id"]
    backend.publish(sold)
    backend.run_queue()
    vinted.fail_once.add("upload_photo_2")  # Vinted answers 503 once: the publish retries after its backoff
    publish_id = backend.publish(backend.create_product(images=2)["id"]).body["id"]
    backend.run_queue()
    assert backend.job(publish_id)["wait_reason"] == "backoff"

    # What auto-delist queues when the product sells elsewhere: a delete at priority 1.
    delete = backend.http(
        "POST", "/jobs", body={"marketplace": "vinted", "action": "delete", "product_id": sold, "priority": 1}
    )
    backend.run_queue()

    assert backend.job(delete.body["id"])["status"] == "completed"
    assert backend.job(publish_id)["status"] == "waiting"  # still in its backoff
    backend.run_queue(wait_timers=30)
    publish = backend.job(publish_id)
    assert (publish["status"], publish["attempts"]) == ("completed", 2)
    assert [m["job_id"] for m in backend.gateway.of_type(tab, "job.completed")][-2:] == [delete.body["id"], publish_id]
    publish_steps = [c["step"] for c in vinted.commands if c["job_id"] == publish_id]
    # It resumed where it stopped: photo 1 went up once.
    assert publish_steps == ["upload_photo_1", "upload_photo_2", "upload_photo_2", "create_item"]


def test_a_job_queued_behind_another_says_which_until_it_runs(backend: Backend, settings: Callable[..., None]) -> None:
    settings(backoff="4,4,4")
    backend.open_tab(fail_once={"upload_photo_1"})
    publish_id = backend.publish(backend.create_product(images=1)["id"]).body["id"]
    backend.run_queue()
    sync = backend.http("POST", "/jobs", body={"marketplace": "vinted", "action": "sync"})
    assert sync.status == 202, sync.body
    backend.run_queue()

    waiting = backend.job(sync.body["id"])
    assert (waiting["status"], waiting["wait_reason"], waiting["waiting_for_job_id"]) == (
        "pending",
        "queued",
        publish_id,
    )
    ahead = backend.job(publish_id)
    assert (ahead["wait_reason"], ahead["waiting_for_job_id"]) == ("backoff", None)  # its own wait, not a queue
    [listed] = [job for job in backend.http("GET", "/jobs").body["items"] if job["id"] == sync.body["id"]]
    assert (listed["wait_reason"], listed["waiting_for_job_id"]) == ("queued", publish_id)
    reloaded, _ = backend.open_tab(ready=False)
    [active] = backend.gateway.of_type(reloaded, "jobs.active")
    shown = {job["job_id"]: (job["wait_reason"], job["waiting_for_job_id"]) for job in active["jobs"]}
    assert shown[sync.body["id"]] == ("queued", publish_id)

    backend.run_queue(wait_timers=30)
    done = backend.job(sync.body["id"])
    assert (done["status"], done["wait_reason"], done["waiting_for_job_id"]) == ("completed", None, None)


def test_cancelling_a_job_mid_batch_leaves_the_others_running(backend: Backend) -> None:
    tab, vinted = backend.open_tab()
    products = [backend.create_product(images=1)["id"] for _ in range(3)]
    batch = backend.http(
        "POST", "/jobs/batch", body={"marketplace": "vinted", "action": "publish", "product_ids": products}
    )
    jobs = {job["product_id"]: job["id"] for job in batch.body["jobs"]}
    victim = jobs[sorted(products)[1]]

    def cancel_during_the_first_job(message: dict[str, Any]) -> None:
        vinted(message)
        if message.get("type") == "plugin.command" and len(vinted.commands) == 1:
            assert backend.http("POST", f"/jobs/{victim}/cancel").body["status"] == "cancelled"

    backend.gateway.listeners[tab] = cancel_during_the_first_job
    backend.run_queue()

    statuses = {job_id: backend.job(job_id)["status"] for job_id in jobs.values()}
    assert statuses.pop(victim) == "cancelled"
    assert set(statuses.values()) == {"completed"}
    assert len(vinted.items) == 2
    view = backend.http("GET", f"/batches/{batch.body['id']}").body
    assert (view["counts"]["completed"], view["counts"]["cancelled"]) == (2, 1)
    assert backend.gateway.of_type(tab, "batch.progress")[-1]["counts"]["completed"] == 2


def test_with_pacing_on_consecutive_vinted_calls_are_spaced_and_no_invocation_waits_for_them(
    backend: Backend, settings: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings(pacing="on", pacing_read="1-1.5", pacing_write="1-1.5", pacing_delete="1-1.5", pacing_min_gap="1")
    tab, vinted = backend.open_tab()
    sent_at: list[float] = []

    def record_time(message: dict[str, Any]) -> None:
        if message.get("type") == "plugin.command":
            sent_at.append(time.monotonic())
        vinted(message)

    backend.gateway.listeners[tab] = record_time
    durations: list[float] = []
    process_job = backend._process_job

    def timed_process_job(event: dict[str, Any], context: Any) -> Any:  # both queues' invocations
        started = time.monotonic()
        try:
            return process_job(event, context)
        finally:
            durations.append(time.monotonic() - started)

    backend.run_queue()  # the tab's connection wake-ups
    monkeypatch.setattr(backend, "_process_job", timed_process_job)
    job_id = backend.publish(backend.create_product(images=2)["id"]).body["id"]

    backend.run_queue(wait_timers=20)

    assert backend.job(job_id)["status"] == "completed"
    gaps = [later - earlier for earlier, later in itertools.pairwise(sent_at)]
    assert len(gaps) == 2
    assert min(gaps) >= 1.0  # the configured minimum
    assert max(durations) < 0.5  # each invocation did its work and ended: none waited out a gap
    # Each photo's reply waited in the TimersQueue for the next call's turn: one wake-up per step, which
    # applied it and sent that call with the step's progress. The user is not told of a wait per step.
    assert backend.gateway.of_type(tab, "job.waiting") == []
    commands = backend.gateway.messages[tab]
    assert [c["progress"]["step"] for c in commands if c["type"] == "plugin.command" and "progress" in c] == [
        "upload_photo_1",
        "upload_photo_2",
    ]
    assert len(durations) <= 4  # created, two held replies, the create's reply (no deadline came yet)


def test_a_reloaded_tab_is_shown_a_waiting_job_with_its_reason(backend: Backend) -> None:
    job_id = backend.publish(backend.create_product()["id"]).body["id"]
    backend.run_queue()  # no tab: the job waits for the extension

    tab, _ = backend.open_tab(ready=False)

    [active] = backend.gateway.of_type(tab, "jobs.active")
    [job] = active["jobs"]
    assert (job["job_id"], job["status"], job["wait_reason"], job["step"]) == (
        job_id,
        "waiting_for_plugin",
        "no_plugin",
        "upload_photo_1",
    )


def test_a_job_held_by_another_transaction_when_its_lane_looks_is_run_moments_later(backend: Backend, sql: Any) -> None:
    """Its wake-up can outrun the UPDATE that marks it queued (or an HTTP cancel's lock): the lane skips a
    row another transaction holds, and must come back for it rather than go idle for good."""
    backend.open_tab()
    job_id = backend.publish(backend.create_product(images=1)["id"]).body["id"]
    with sql.connect() as holder:
        holding = holder.begin()
        holder.execute(text("SELECT id FROM marketplace_jobs WHERE id = :id FOR UPDATE"), {"id": job_id})
        backend.run_queue()  # the lane's wake-up, while the job's row is held
        assert backend.job(job_id)["status"] == "pending"
        holding.rollback()
    backend.run_queue(wait_timers=10)
    assert backend.job(job_id)["status"] == "completed"
