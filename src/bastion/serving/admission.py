"""The gateway's ``predict`` authorizations, group-committed across concurrent requests.

Every prediction is authorized by ``AccessService`` and its decision appended to the
audit log *before* the request goes on. Done one request at a time, each decision is a
thread hop and its own turn at the audit log's commit. :class:`BatchedAuthorizer` queues
the requests waiting on the event loop; one task hands the whole queue to
``AccessService.authorize_many`` in a single thread hop (each request still decided
alone, by the same rules), which appends all their decisions in one durable commit;
only when that commit has returned is any of the waiting requests released, each with
its own decision (or its own refusal, raised). While one batch commits, the next one
queues. So no request is answered before its authorization is durably recorded; a
failed commit fails every request of the batch (503/500 as for ``authorize``).

Example::

    auth = BatchedAuthorizer(ws.access)
    decision = await auth.authorize(actor, "predict", "project/credit/endpoint/scoring")
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import anyio

from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor, Decision
from bastion.core.canonical import JSON
from bastion.core.errors import BastionError

_Ask = tuple[Actor, str, str, Mapping[str, JSON] | None]
_MAX_BATCH = 512  # decisions per commit (the audit log's append_many takes thousands)


class BatchedAuthorizer:
    """See the module docstring. One instance per event loop (the gateway's)."""

    def __init__(self, access: AccessService) -> None:
        self._access = access
        self._queue: list[tuple[_Ask, asyncio.Future[Decision]]] = []
        self._draining: asyncio.Task[None] | None = None
        #: sizes of the batches committed (for the bench and tests)
        self.batches: list[int] = []

    async def authorize(self, actor: Actor, action: str, resource: str,
                        details: Mapping[str, JSON] | None = None) -> Decision:
        """``AccessService.authorize``, returning once the decision is durably audited."""
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._queue.append(((actor, action, resource, details), future))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:_MAX_BATCH], self._queue[_MAX_BATCH:]
            asks = [ask for ask, _ in batch]
            self.batches.append(len(batch))
            del self.batches[:-1000]
            try:
                outcomes = await anyio.to_thread.run_sync(self._access.authorize_many, asks)
            except Exception as e:  # the commit failed: nobody of the batch goes on
                for _, future in batch:
                    if not future.done():
                        future.set_exception(e)
                continue
            except BaseException:  # cancelled (shutdown): the waiting requests end too
                for _, future in batch + self._queue:
                    future.cancel()
                raise
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue  # its request was cancelled (client gone); the entry stays
                if isinstance(outcome, BastionError):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)


__all__ = ["BatchedAuthorizer"]
