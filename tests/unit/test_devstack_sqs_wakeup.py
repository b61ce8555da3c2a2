"""A message sent to an idle queue is picked up at once, as Lambda's long-polling event source mapping
does: the devstack's moto server wakes the queue's SQS triggers instead of letting them finish their
idle pause. The pause is made 5 s here, so only the wake-up can explain a quick pick-up."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast
from urllib.parse import urlencode

import boto3
import pytest
from moto import mock_aws

from devstack import sqs_trigger
from devstack.instances import FunctionPool, Invocation
from devstack.moto_server import MotoServer, SqsSendWatcher
from devstack.sqs_trigger import SqsTrigger

LONG_PAUSE = 5.0
QUICK = 2.0  # well under LONG_PAUSE, with room for a loaded 2-core machine


class RecordingPool:
    """Stands in for a function pool: records when each message body was run."""

    spec = type("Spec", (), {"name": "fake"})()

    def __init__(self) -> None:
        self.runs: dict[str, float] = {}
        self.ran = threading.Condition()

    def invoke(self, event: dict[str, Any]) -> Invocation:
        with self.ran:
            for record in event["Records"]:
                self.runs[record["body"]] = time.monotonic()
            self.ran.notify_all()
        return Invocation({"batchItemFailures": []}, 1, None)

    def wait_for(self, body: str, timeout: float) -> float | None:
        """When `body` ran (time.monotonic()), waiting up to `timeout` for it; None if it did not run."""
        with self.ran:
            self.ran.wait_for(lambda: body in self.runs, timeout)
            return self.runs.get(body)


class CountingSqs:
    """An SQS client that counts the receives that came back empty, so a test knows the pollers idle."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.empty_receives = 0

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self._client.receive_message(**kwargs)
        if not answer.get("Messages"):
            self.empty_receives += 1
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def long_idle_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqs_trigger, "IDLE_PAUSE_SECONDS", LONG_PAUSE)


class Moto:
    """The devstack's moto server on a free port, waking the triggers registered with it."""

    def __init__(self) -> None:
        self.triggers: list[SqsTrigger] = []
        self.woken: list[str] = []
        self.server = MotoServer("127.0.0.1", 0, on_sqs_send=self.wake)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.sqs = boto3.client(
            "sqs",
            endpoint_url=f"http://{host}:{port}",
            region_name="us-east-1",
            aws_access_key_id="devstack",
            aws_secret_access_key="devstack",
        )

    def wake(self, queue_name: str) -> None:
        self.woken.append(queue_name)
        for trigger in self.triggers:
            if trigger.queue_name == queue_name:
                trigger.wake()

    def idle_trigger(self, queue_url: str, pool: RecordingPool, pollers: int = 2) -> SqsTrigger:
        """A started trigger whose pollers have all found the queue empty (and so are pausing)."""
        sqs = CountingSqs(self.sqs)
        trigger = SqsTrigger(
            cast(FunctionPool, pool),
            sqs,
            queue_url,
            "arn:aws:sqs:us-east-1:123456789012:" + queue_url.rsplit("/", 1)[-1],
            batch_size=10,
            report_batch_item_failures=True,
            pollers=pollers,
        )
        self.triggers.append(trigger)
        trigger.start()
        wait_until(lambda: sqs.empty_receives >= pollers)
        time.sleep(0.1)  # into their pause
        return trigger


@pytest.fixture
def moto() -> Iterator[Moto]:
    moto = Moto()
    try:
        yield moto
    finally:
        for trigger in moto.triggers:
            trigger.stop()
        moto.server.stop()
        # moto keeps its queues in this process: leave it clean for the tests after.
        cleaner = mock_aws()
        cleaner.start(reset=True)
        cleaner.stop()


def create_queue(sqs: Any, fifo: bool) -> str:
    name = f"wakeup-{uuid.uuid4().hex[:8]}" + (".fifo" if fifo else "")
    attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if fifo else {}
    url: str = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url


@pytest.mark.parametrize("fifo", [False, True], ids=["standard", "fifo"])
def test_a_message_sent_to_an_idle_queue_is_run_at_once_not_after_the_idle_pause(moto: Moto, fifo: bool) -> None:
    url = create_queue(moto.sqs, fifo)
    pool = RecordingPool()
    moto.idle_trigger(url, pool)

    for n in range(3):  # each send finds the pollers idle again
        body = json.dumps({"n": n})
        sent = time.monotonic()
        moto.sqs.send_message(QueueUrl=url, MessageBody=body, **({"MessageGroupId": "g"} if fifo else {}))
        ran = pool.wait_for(body, LONG_PAUSE * 2)

        assert ran is not None, "the message was never run"
        assert ran - sent < QUICK, f"run {ran - sent:.2f} s after the send: the idle pause was not cut short"
        time.sleep(0.1)


def test_a_batch_sent_to_an_idle_queue_wakes_only_that_queues_trigger(moto: Moto) -> None:
    url, other_url = create_queue(moto.sqs, False), create_queue(moto.sqs, False)
    pool, other_pool = RecordingPool(), RecordingPool()
    moto.idle_trigger(url, pool)
    moto.idle_trigger(other_url, other_pool)

    sent = time.monotonic()
    moto.sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "1", "MessageBody": "one"}])
    ran = pool.wait_for("one", LONG_PAUSE * 2)

    assert ran is not None
    assert ran - sent < QUICK
    assert moto.woken == [url.rsplit("/", 1)[-1]]
    assert other_pool.runs == {}


def test_stop_returns_promptly_while_the_pollers_pause(moto: Moto) -> None:
    trigger = moto.idle_trigger(create_queue(moto.sqs, False), RecordingPool())

    started = time.monotonic()
    trigger.stop()

    assert time.monotonic() - started < QUICK
    assert not any(thread.is_alive() for thread in trigger._threads)


class RacingQueue:
    """A queue where a message is sent (and the trigger woken) while a receive is under way, just too
    late for that receive to see it."""

    def __init__(self) -> None:
        self.trigger: SqsTrigger | None = None
        self.waiting: list[dict[str, Any]] = []
        self.receives = 0
        self.sent_at: float | None = None

    def receive_message(self, **_: Any) -> dict[str, Any]:
        self.receives += 1
        found, self.waiting = self.waiting, []
        if self.receives == 3:  # both pollers have gone idle once; this is a later receive
            self.waiting.append({"MessageId": "m", "ReceiptHandle": "r", "Body": "late", "MD5OfBody": ""})
            self.sent_at = time.monotonic()
            assert self.trigger is not None
            self.trigger.wake()
        return {"Messages": found} if found else {}

    def delete_message(self, **_: Any) -> None:
        pass


def test_a_send_landing_during_a_receive_is_not_missed() -> None:
    queue = RacingQueue()
    pool = RecordingPool()
    trigger = SqsTrigger(
        cast(FunctionPool, pool), queue, "queue/q", "arn", batch_size=10, report_batch_item_failures=True, pollers=1
    )
    queue.trigger = trigger
    trigger.start()
    try:
        # The first receive finds nothing and the poller pauses; wake it so it receives a second and
        # a third time, the third being the one a send lands during.
        wait_until(lambda: queue.receives >= 1)
        trigger.wake()
        wait_until(lambda: queue.receives >= 2)
        time.sleep(0.05)
        trigger.wake()
        ran = pool.wait_for("late", LONG_PAUSE * 2)
    finally:
        trigger.stop()

    assert ran is not None
    assert queue.sent_at is not None
    assert ran - queue.sent_at < QUICK


# the middleware alone ---------------------------------------------------------------------------------


def call(watcher: SqsSendWatcher, environ: dict[str, Any]) -> tuple[str, bytes]:
    statuses: list[str] = []
    response = watcher(environ, lambda status, headers, *_: statuses.append(status))
    try:
        body = b"".join(response)
    finally:
        close = getattr(response, "close", None)
        if close is not None:
            close()
    return statuses[0], body


def echo_app(status: str = "200 OK") -> Callable[[dict[str, Any], Any], Iterable[bytes]]:
    """A WSGI app answering with the request body it reads, as moto reads it (CONTENT_LENGTH bytes)."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body: bytes = environ["wsgi.input"].read(length)
        start_response(status, [("Content-Type", "text/plain")])
        return [body]

    return app


def post(body: bytes, **headers: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body + b"trailing bytes of the next request"),
        **headers,
    }


URL = "http://127.0.0.1:4566/123456789012/JobsQueue.fifo"


@pytest.mark.parametrize(
    ("environ", "woken"),
    [
        (post(json.dumps({"QueueUrl": URL}).encode(), HTTP_X_AMZ_TARGET="AmazonSQS.SendMessage"), ["JobsQueue.fifo"]),
        (
            post(json.dumps({"QueueUrl": URL}).encode(), HTTP_X_AMZ_TARGET="AmazonSQS.SendMessageBatch"),
            ["JobsQueue.fifo"],
        ),
        (post(json.dumps({"QueueUrl": URL}).encode(), HTTP_X_AMZ_TARGET="AmazonSQS.ReceiveMessage"), []),
        (post(b'{"TableName": "t"}', HTTP_X_AMZ_TARGET="DynamoDB_20120810.PutItem"), []),
        (post(b"not json", HTTP_X_AMZ_TARGET="AmazonSQS.SendMessage"), []),
        (
            post(
                urlencode({"Action": "SendMessage", "QueueUrl": URL, "MessageBody": "x"}).encode(),
                CONTENT_TYPE="application/x-www-form-urlencoded; charset=utf-8",
            ),
            ["JobsQueue.fifo"],
        ),
        (
            {
                **post(
                    urlencode({"Action": "SendMessageBatch"}).encode(),
                    CONTENT_TYPE="application/x-www-form-urlencoded",
                ),
                "PATH_INFO": "/123456789012/ResultsQueue",
            },
            ["ResultsQueue"],
        ),
        (
            post(
                urlencode({"Action": "ReceiveMessage", "QueueUrl": URL}).encode(),
                CONTENT_TYPE="application/x-www-form-urlencoded",
            ),
            [],
        ),
    ],
    ids=["json-send", "json-batch", "json-receive", "dynamodb", "bad-json", "query-send", "query-path", "query-recv"],
)
def test_the_watcher_names_the_queue_of_each_send_and_passes_the_body_on_untouched(
    environ: dict[str, Any], woken: list[str]
) -> None:
    names: list[str] = []
    expected_body = environ["wsgi.input"].getvalue()[: int(environ["CONTENT_LENGTH"])]

    status, body = call(SqsSendWatcher(echo_app(), names.append), environ)

    assert status == "200 OK"
    assert body == expected_body
    assert names == woken


def test_a_failed_send_wakes_nobody_and_a_failing_listener_does_not_fail_the_send() -> None:
    environ = post(json.dumps({"QueueUrl": URL}).encode(), HTTP_X_AMZ_TARGET="AmazonSQS.SendMessage")
    names: list[str] = []
    assert call(SqsSendWatcher(echo_app("400 Bad Request"), names.append), environ)[0] == "400 Bad Request"
    assert names == []

    def failing(_: str) -> None:
        raise RuntimeError("listener broke")

    environ = post(json.dumps({"QueueUrl": URL}).encode(), HTTP_X_AMZ_TARGET="AmazonSQS.SendMessage")
    assert call(SqsSendWatcher(echo_app(), failing), environ)[0] == "200 OK"
