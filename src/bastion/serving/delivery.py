"""Webhook deliveries off the request path: a bounded queue and one sender thread.

``submit`` never blocks: when the queue is full the delivery is dropped, logged and
counted (``dropped``).  The sender checks the target again (:class:`~bastion.serving.
webhooks.TargetGuard`: resolve now, refuse private addresses, pin the address), POSTs the
signed JSON with a bounded timeout and no redirects followed, and retries a failure
(connection error, timeout, 5xx, 429) with exponential backoff up to ``attempts`` times;
a refused target or another 4xx/3xx is final.  Each outcome goes to ``on_result``
(the alert store's delivery log).

Example::

    deliveries = Deliveries(HttpPoster(), TargetGuard(), on_result=repo.record_delivery)
    deliveries.submit(Delivery(alert_id, hook_id, url, body, secret))
    deliveries.wait_idle(5.0)
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bastion.core.errors import BastionError
from bastion.serving.webhooks import PinnedTarget, TargetGuard, sign

_log = logging.getLogger("bastion.alerts")


@dataclass(frozen=True)
class Delivery:
    alert_id: str
    webhook_id: str
    url: str
    body: bytes
    secret: bytes


class Poster(Protocol):
    def post(self, target: PinnedTarget, body: bytes, headers: dict[str, str],
             timeout: float) -> int:
        """POST to the pinned address without following redirects; the HTTP status.
        Raises ``OSError`` (or a subclass) when the connection fails or times out."""


@dataclass(frozen=True)
class DeliveryOptions:
    attempts: int = 4
    backoff: float = 0.5  # seconds before the 2nd attempt; doubles each time
    timeout: float = 5.0  # per attempt (connect + read)
    queue_size: int = 1000


#: alert id, webhook id, status ("delivered" | "failed" | "refused"), attempts, error, time
ResultSink = Callable[[str, str, str, int, str, str], None]


class Deliveries:
    """See the module docstring."""

    def __init__(self, poster: Poster, guard: TargetGuard, on_result: ResultSink,
                 options: DeliveryOptions | None = None) -> None:
        self._poster = poster
        self._guard = guard
        self._on_result = on_result
        self.options = options or DeliveryOptions()
        self._queue: queue.Queue[Delivery] = queue.Queue(self.options.queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.dropped = 0

    def submit(self, d: Delivery) -> bool:
        """Queue ``d`` (never blocks); False when the queue is full and it was dropped."""
        self._ensure_thread()
        try:
            self._queue.put_nowait(d)
        except queue.Full:
            self.dropped += 1
            _log.error("webhook queue full: alert %s not delivered to %s", d.alert_id,
                       d.webhook_id)
            return False
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued delivery finished (True) or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="bastion-webhooks",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            d = self._queue.get()
            try:
                try:
                    status, attempts, error = self._send(d)
                except Exception as e:  # an unexpected failure is an outcome, not silence
                    _log.exception("webhook %s: delivery of alert %s crashed", d.webhook_id,
                                   d.alert_id)
                    status, attempts, error = "failed", 1, f"{type(e).__name__}: {e}"[:500]
                at = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
                try:
                    self._on_result(d.alert_id, d.webhook_id, status, attempts, error, at)
                except Exception:  # the log of a delivery must not stop the sender
                    _log.exception("recording a webhook delivery failed")
            finally:
                self._queue.task_done()

    def _send(self, d: Delivery) -> tuple[str, int, str]:
        error = ""
        for attempt in range(1, self.options.attempts + 1):
            if attempt > 1:
                time.sleep(self.options.backoff * 2 ** (attempt - 2))
            try:  # checked again now: the name may resolve elsewhere than at registration
                pinned = self._guard.pin(self._guard.check(d.url))
            except BastionError as e:
                _log.error("webhook %s refused at delivery: %s", d.webhook_id, e.message)
                return "refused", attempt, e.message[:500]
            headers = {"Content-Type": "application/json", "User-Agent": "bastion-alerts",
                       **sign(d.secret, d.body, timestamp=int(time.time()))}
            try:
                code = self._poster.post(pinned, d.body, headers, self.options.timeout)
            except OSError as e:
                error = f"{type(e).__name__}: {e}"[:500]
                continue
            if 200 <= code < 300:
                return "delivered", attempt, ""
            error = f"HTTP {code}" + (" (redirects are not followed)" if 300 <= code < 400
                                      else "")
            if not (code >= 500 or code == 429):
                break
        _log.error("webhook %s: alert %s not delivered: %s", d.webhook_id, d.alert_id, error)
        return "failed", attempt, error


__all__ = ["Deliveries", "Delivery", "DeliveryOptions", "Poster", "ResultSink"]
