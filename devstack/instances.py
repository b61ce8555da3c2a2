"""Lambda instances: each is a worker process that imports the function's module once (its cold start)
and then runs one invocation at a time. A pool keeps up to `concurrency` instances per function."""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from devstack.functions import FunctionSpec

logger = logging.getLogger("devstack")
_spawn = multiprocessing.get_context("spawn")


MAX_SUMMARY_LENGTH = 500


class InvocationError(Exception):
    """The handler raised, timed out, or its instance died.

    `str()` is the whole story (the handler's traceback, when it raised); `summary` is one line for
    the log: the exception's type and message (see `describe_exception`).
    """

    def __init__(self, details: str, summary: str | None = None) -> None:
        super().__init__(details)
        self.summary = summary or _one_line(details)


def describe_exception(exc: BaseException, limit: int = MAX_SUMMARY_LENGTH) -> str:
    """`module.Type: message` on one line (its lines joined by " | "), trimmed to `limit` characters.

    The last line of a traceback is not enough: SQLAlchemy puts the cause first ("(psycopg.errors.X)
    why", then the SQL) and ends with a "Background on this error at: …" link, which is left out.
    Powertools' BatchProcessingError ("All records failed processing") shows its records' exceptions.
    """
    children = [
        child[1]
        for child in getattr(exc, "child_exceptions", None) or []
        if isinstance(child, tuple) and len(child) == 3 and isinstance(child[1], BaseException)
    ]
    if children:
        more = f" (and {len(children) - 1} more)" if len(children) > 1 else ""
        text = f"{type(exc).__name__} → {describe_exception(children[0], limit)}{more}"
    else:
        message = _one_line(str(exc))
        text = f"{_type_name(exc)}: {message}" if message else _type_name(exc)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _type_name(exc: BaseException) -> str:
    kind = type(exc)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _one_line(text: str) -> str:
    lines = (line.strip() for line in text.strip().splitlines())
    return " | ".join(line for line in lines if line and not line.startswith(_SQLALCHEMY_BACKGROUND))


_SQLALCHEMY_BACKGROUND = "(Background on this error at:"


@dataclass(frozen=True)
class Invocation:
    result: Any
    duration_ms: float
    cold_start_ms: float | None  # set on the invocation that started the instance


def _instance_main(channel: Connection, spec: FunctionSpec, environment: dict[str, str]) -> None:
    """Runs in the worker process: Lambda's init phase, then its invoke loop."""
    os.environ.clear()
    os.environ.update(environment)
    from devstack.lambdas import LambdaContext, load_handler

    started = time.perf_counter()
    try:
        handler = load_handler(spec.code_dir, spec.handler)
    except BaseException as exc:
        channel.send(("init_error", (traceback.format_exc(), describe_exception(exc))))
        return
    channel.send(("ready", (time.perf_counter() - started) * 1000))
    while True:
        try:
            event = channel.recv()
        except EOFError:
            return
        context = LambdaContext(
            spec.logical_id, timeout_seconds=spec.timeout_seconds, memory_limit_in_mb=spec.memory_mb
        )
        try:
            channel.send(("ok", handler(event, context)))
        except BaseException as exc:
            channel.send(("error", (traceback.format_exc(), describe_exception(exc))))


class Instance:
    def __init__(self, spec: FunctionSpec, base_environment: dict[str, str]) -> None:
        self.spec = spec
        parent, child = _spawn.Pipe()
        self._channel = parent
        self._process = _spawn.Process(
            target=_instance_main,
            args=(child, spec, {**base_environment, **spec.environment}),
            name=f"lambda-{spec.name}",
            daemon=True,
        )
        started = time.perf_counter()
        self._process.start()
        child.close()
        status, detail = self._receive(spec.timeout_seconds + 30)
        if status != "ready":
            self.stop()
            details, summary = detail
            raise InvocationError(f"{spec.name} failed to start:\n{details}", f"{spec.name} failed to start: {summary}")
        self.init_ms: float = (time.perf_counter() - started) * 1000
        self.pending_cold_start = True

    def invoke(self, event: dict[str, Any]) -> Any:
        self._channel.send(event)
        status, detail = self._receive(self.spec.timeout_seconds)
        if status == "error":
            details, summary = detail
            raise InvocationError(details, summary)
        return detail

    def _receive(self, timeout: float) -> tuple[str, Any]:
        if not self._channel.poll(timeout):
            self.stop()  # Lambda stops a function at its timeout; the instance does not survive it
            raise InvocationError(f"Task timed out after {timeout:.2f} seconds")
        try:
            status, detail = self._channel.recv()
        except EOFError:
            self.stop()
            raise InvocationError(f"the {self.spec.name} instance exited") from None
        return str(status), detail

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=5)
        self._channel.close()


class FunctionPool:
    """Up to `concurrency` instances of one function; an invocation waits for a free one."""

    def __init__(self, spec: FunctionSpec, base_environment: dict[str, str], concurrency: int) -> None:
        self.spec = spec
        self._base_environment = base_environment
        self._slots = threading.BoundedSemaphore(concurrency)
        self._idle: queue.SimpleQueue[Instance] = queue.SimpleQueue()
        self._all: list[Instance] = []
        self._lock = threading.Lock()
        self._closed = False

    def invoke(self, event: dict[str, Any]) -> Invocation:
        with self._slots:
            instance = self._take()
            started = time.perf_counter()
            try:
                result = instance.invoke(event)
            finally:
                if instance.alive and not self._closed:
                    self._idle.put(instance)
            duration = (time.perf_counter() - started) * 1000
            cold_start = instance.init_ms if instance.pending_cold_start else None
            instance.pending_cold_start = False
            return Invocation(result, duration, cold_start)

    def prestart(self, count: int) -> None:
        """Start instances until `count` are ready (like provisioned concurrency): no cold start later."""
        with self._lock:
            missing = max(0, count - sum(instance.alive for instance in self._all))
        threads = [threading.Thread(target=lambda: self._idle.put(self._take())) for _ in range(missing)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    @property
    def process_ids(self) -> list[int]:
        """The worker processes of this function's live instances."""
        with self._lock:
            return [instance.pid for instance in self._all if instance.alive and instance.pid is not None]

    def _take(self) -> Instance:
        while True:
            try:
                instance = self._idle.get_nowait()
            except queue.Empty:
                break
            if instance.alive:
                return instance
        instance = Instance(self.spec, self._base_environment)
        logger.info("%-13s cold start: instance ready in %.0f ms", self.spec.name, instance.init_ms)
        with self._lock:
            self._all.append(instance)
        return instance

    def close(self) -> None:
        self._closed = True
        with self._lock:
            for instance in self._all:
                instance.stop()
            self._all.clear()
