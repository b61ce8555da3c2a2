"""One dispatcher: after a transaction commits, its events go to their consumers, then are marked dispatched.

Consumers:
- the user's WebSocket connections (`tell`, the notifier): an event's `message`;
- `hooks`: any number of callables taking the Event;
- `batch_hooks`: callables taking every event of a dispatch at once (outbound webhooks, crosslist.webhooks:
  one query per batch, not per event).
Auto-delist reacts to a job's end inside the job's own transaction (crosslist.jobs.reactions): what it queues
is committed with the change, so it needs no delivery of its own; the lanes it queued work in are woken after
the commit, and the sweeper wakes any whose wake-up was lost.

Delivery is at least once: a Lambda that dies between the commit and `dispatch` leaves the events undispatched,
and the sweeper's pass (`redeliver`) delivers them. A consumer is never told twice by one pass, but may be by
two (a pass that died after telling and before marking): consumers are idempotent (the web app keys a job's
end by job id). A hook that raises is logged and the others are still served; after the commit, the events are
then left unmarked, so the sweeper's pass delivers them again a minute later (the webhooks' fan-out is idempotent:
one delivery per event and endpoint), and that pass marks them whatever happens (a consumer failing twice is
logged, not retried every minute for ever). Telling connections is best effort: a failure there is only logged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from crosslist.events.events import Event, JsonDict

logger = Logger(child=True)
MAX_PER_PASS = 500

Hook = Callable[[Event], None]
BatchHook = Callable[[Sequence[Event]], None]


class Dispatcher:
    def __init__(
        self,
        sessions: Any,  # a sessionmaker: the WebSocket side never imports SQLAlchemy for this annotation
        *,
        tell: Callable[[str, JsonDict], object] | None = None,
        hooks: Sequence[Hook] = (),
        batch_hooks: Sequence[BatchHook] = (),
    ) -> None:
        self._sessions = sessions
        self._tell = tell
        self._hooks = tuple(hooks)
        self._batch_hooks = tuple(batch_hooks)

    def dispatch(self, events: Sequence[Event], *, told: bool = False) -> None:
        """Deliver events whose transaction committed, then mark them dispatched. `told`: the caller has told
        the user's connections already (the engine does, in order with the turn's other messages). A failure
        to mark is logged: the sweeper delivers them again."""
        if not events:
            return
        if not self._deliver(events, told=told):
            # A consumer that keeps what it is given (the webhooks' queue) failed: the sweeper's pass delivers
            # these again (consumers are idempotent), once; a consumer failing then too is logged there.
            logger.warning("events left undispatched for the sweeper", extra={"events": len(events)})
            return
        try:
            from crosslist.db.engine import transaction
            from crosslist.events import outbox

            with transaction(self._sessions) as session:
                outbox.mark_dispatched(session, [event.id for event in events])
        except Exception:
            logger.exception("events delivered but not marked: the sweeper delivers them again")

    def redeliver(self, created_before: datetime, limit: int = MAX_PER_PASS) -> int:
        """The sweeper's pass: events left undispatched (their Lambda died after the commit) are delivered and
        marked, in one transaction holding them (a concurrent pass skips them). Returns how many."""
        from crosslist.db.engine import transaction
        from crosslist.events import outbox

        with transaction(self._sessions) as session:
            events = outbox.undispatched(session, created_before, limit)
            self._deliver(events, told=False)
            outbox.mark_dispatched(session, [event.id for event in events])
        if events:
            logger.info("undispatched events delivered", extra={"events": len(events)})
        return len(events)

    def _deliver(self, events: Sequence[Event], *, told: bool) -> bool:
        """Every consumer served; False when a hook failed (telling connections is best effort: never retried)."""
        served = True
        for event in events:
            message = event.message
            if not told and message is not None and self._tell is not None:
                try:
                    self._tell(event.user_id, message)
                except Exception:
                    logger.exception("an event's message was not told", extra={"event": event.type})
            for hook in self._hooks:
                try:
                    hook(event)
                except Exception:
                    served = False
                    logger.exception("an event's consumer failed", extra={"event": event.type})
        for batch_hook in self._batch_hooks:
            if not events:
                break
            try:
                batch_hook(events)
            except Exception:
                served = False
                logger.exception("a consumer of events failed", extra={"events": len(events)})
        return served
