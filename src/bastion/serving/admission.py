"""The gateway's ``predict`` authorizations, group-committed across concurrent requests.

Every prediction is authorized by ``AccessService`` and its decision appended to the
audit log *before* the request is answered. Done one request at a time, each decision is
a thread hop and its own turn at the audit log's commit. :class:`BatchedAuthorizer`
queues the requests waiting on the event loop; one task hands the whole queue to
``AccessService.authorize_many`` in a single thread hop (each request still decided
alone, by the same rules), which appends all their decisions in one durable commit.
While one batch commits, the next one queues.

Two ways to wait:

- ``authorize`` returns only once the decision is durably recorded (or raises the
  refusal, after the refusal is recorded).
- ``admit`` returns as soon as the request is *decided allowed* — before the commit,
  at once when the access cache already allows it (no thread hop) — with an
  :class:`Admission` whose ``recorded()`` the caller must await before it answers; it
  raises the audited refusal if the batch's decision (the one that counts) refuses.
  The gateway uses this to read, validate and predict the request while its decision is
  being committed, instead of after. A refused request is never admitted: ``admit``
  raises its refusal only once the refusal is recorded. A failed commit fails
  ``recorded()`` for every request of the batch (503/500 as for ``authorize``), so no
  answer leaves before its authorization is on disk.

Example::

    auth = BatchedAuthorizer(ws.access)
    decision = await auth.authorize(actor, "predict", "project/credit/endpoint/scoring")
    admission = await auth.admit(actor, "predict", "project/credit/endpoint/scoring")
    answer = await compute()            # runs while the decision is committed
    await admission.recorded()          # raises if the commit failed: answer nothing
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

import anyio

from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor, Decision
from bastion.core.canonical import JSON
from bastion.core.errors import BastionError

_Ask = tuple[Actor, str, str, Mapping[str, JSON] | None]
_MAX_BATCH = 512  # decisions per commit (the audit log's append_many takes thousands)


@dataclass
class _Waiting:
    ask: _Ask
    #: True once decided allowed (before the commit), False when refused
    decided: asyncio.Future[bool]
    #: the decision, once durably recorded (or the refusal / the commit's error)
    durable: asyncio.Future[Decision]


@dataclass
class Admission:
    """A request decided allowed whose decision may still be on its way to disk."""

    _durable: asyncio.Future[Decision] = field(repr=False)

    async def recorded(self) -> Decision:
        """The decision once durably in the audit log; raises if its commit failed."""
        return await asyncio.shield(self._durable)


class BatchedAuthorizer:
    """See the module docstring. One instance per event loop (the gateway's)."""

    def __init__(self, access: AccessService) -> None:
        self._access = access
        self._queue: list[_Waiting] = []
        self._draining: asyncio.Task[None] | None = None
        #: sizes of the batches committed (for the bench and tests)
        self.batches: list[int] = []

    async def authorize(self, actor: Actor, action: str, resource: str,
                        details: Mapping[str, JSON] | None = None) -> Decision:
        """``AccessService.authorize``, returning once the decision is durably audited."""
        return await self._enqueue((actor, action, resource, details)).durable

    async def admit(self, actor: Actor, action: str, resource: str,
                    details: Mapping[str, JSON] | None = None) -> Admission:
        """Return once decided allowed (see the module docstring); a refusal is raised
        once it is recorded."""
        waiting = self._enqueue((actor, action, resource, details))
        if self._access.allowed_from_cache(actor, action, resource):
            # the access cache already allows it: go on now; the audited decision (made
            # again, by the same rules, in the batch) is awaited by ``recorded()``, which
            # raises its refusal if the principal lost the permission in between
            return Admission(waiting.durable)
        if not await waiting.decided:
            await waiting.durable  # raises the refusal, after it is on disk
            raise AssertionError("a refused decision resolved without its refusal")
        return Admission(waiting.durable)

    def _enqueue(self, ask: _Ask) -> _Waiting:
        loop = asyncio.get_running_loop()
        waiting = _Waiting(ask, loop.create_future(), loop.create_future())
        self._queue.append(waiting)
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain())
        return waiting

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch, self._queue = self._queue[:_MAX_BATCH], self._queue[_MAX_BATCH:]
            asks = [w.ask for w in batch]
            self.batches.append(len(batch))
            del self.batches[:-1000]

            def decided(allowed: list[bool], batch: list[_Waiting] = batch) -> None:
                # from the worker thread, before the commit: wake the allowed ones
                loop.call_soon_threadsafe(_release, batch, allowed)

            try:
                outcomes = await anyio.to_thread.run_sync(
                    functools.partial(self._access.authorize_many, asks, on_decided=decided))
            except Exception as e:  # the commit failed: nobody of the batch goes on
                for w in batch:
                    _fail(w, e)
                continue
            except BaseException:  # cancelled (shutdown): the waiting requests end too
                for w in batch + self._queue:
                    w.decided.cancel()
                    w.durable.cancel()
                raise
            for w, outcome in zip(batch, outcomes, strict=True):
                if not w.decided.done():
                    w.decided.set_result(not isinstance(outcome, BastionError))
                if w.durable.done():
                    continue  # its request was cancelled (client gone); the entry stays
                if isinstance(outcome, BastionError):
                    w.durable.set_exception(outcome)
                else:
                    w.durable.set_result(outcome)


def _release(batch: list[_Waiting], allowed: list[bool]) -> None:
    for w, ok in zip(batch, allowed, strict=True):
        if not w.decided.done():
            w.decided.set_result(ok)


def _fail(w: _Waiting, error: Exception) -> None:
    for future in (w.decided, w.durable):
        if not future.done():
            future.set_exception(error)
    if w.decided.done() and not w.decided.cancelled():
        w.decided.exception()  # mark retrieved: an admitted request may never look at it
    if not w.durable.cancelled():
        w.durable.exception()  # mark retrieved (the request may be gone)


__all__ = ["Admission", "BatchedAuthorizer"]
