"""Webhook deliveries from a durable outbox: claimed under a lease, sent, recorded.

``AlertService.raise_alert`` writes one *pending* outbox row per target webhook in the
transaction that opens the alert, so an alert is never stored without its deliveries.
The sender (one thread per process, :class:`Deliveries`) repeats a bounded *tick*:

1. claim a due row: one conditional UPDATE (``status = 'pending'``, due, and not leased
   or its lease expired) sets ``claimed_by`` (this sender and a fresh claim token),
   ``lease_until`` and counts the attempt, so two replicas on one database never send
   the same attempt at once, and a row whose sender died is claimed again once its
   lease ends;
2. check the target again (:class:`~bastion.serving.webhooks.TargetGuard`: resolve now,
   refuse private addresses, pin the address) and POST the signed JSON once, with a
   bounded timeout and no redirects followed;
3. record the outcome, only while still holding the claim: ``delivered``; ``refused``
   (the target fails the guard) or ``failed`` (another 4xx/3xx, or the last attempt)
   are final and go to the delivery log in the same transaction; a retryable failure
   (connection error, timeout, 5xx, 429) becomes due again after an exponential
   backoff (``backoff * 2 ** (attempts - 1)``).

Delivery is *at least once*: a sender killed after the POST and before step 3 leaves the
row claimed; after the lease it is sent again with the same ``X-Bastion-Delivery`` id
(also in the signed body), by which receivers deduplicate.  At most ``batch`` rows are
handled per tick, each claim is one row (its lease covers one attempt), and the thread
sleeps until the next row is due (at most ``poll`` seconds), so pending rows left by a
crash or by another process (``bastion monitor run``) are resumed when a sender starts.
Replicas compare lease times written by their own clocks: keep them synchronised (NTP).

Example::

    sender = Deliveries(HttpPoster(), TargetGuard(), outbox, secret_of, on_final)
    sender.start()              # the gateway; raise_alert wakes it
    sender.wait_idle(5.0)       # every pending row has an outcome
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from bastion.core.crashpoints import crash_point
from bastion.core.errors import BastionError, ConfigurationError
from bastion.serving.webhooks import PinnedTarget, TargetGuard, sign

_log = logging.getLogger("bastion.alerts")
DELIVERY_HEADER = "X-Bastion-Delivery"


@dataclass(frozen=True)
class Delivery:
    """One claimed outbox row (``attempts`` counts this attempt)."""

    id: str
    alert_id: str
    webhook_id: str
    url: str  # "" when the webhook was removed meanwhile
    body: bytes
    attempts: int
    claim: str  # the claim token this sender holds


class Poster(Protocol):
    def post(self, target: PinnedTarget, body: bytes, headers: dict[str, str],
             timeout: float) -> int:
        """POST to the pinned address without following redirects; the HTTP status.
        Raises ``OSError`` (or a subclass) when the connection fails or times out."""


class Outbox(Protocol):
    def claim(self, claim: str, now: str, lease_until: str,
              skip: frozenset[str]) -> Delivery | None:
        """Claim one due row (not in ``skip``) for ``claim``; None when none is due."""

    def retry(self, d: Delivery, error: str, next_attempt_at: str, now: str) -> bool:
        """Make the row due again later; False when the claim was lost."""

    def finish(self, d: Delivery, status: str, error: str, now: str) -> bool:
        """Final outcome, written to the delivery log too; False when the claim was lost."""

    def pending(self, alert_id: str | None) -> int: ...

    def next_due(self) -> str | None:
        """The earliest ``next_attempt_at`` (or lease end) of a pending row."""


@dataclass(frozen=True)
class DeliveryOptions:
    attempts: int = 4
    backoff: float = 0.5  # seconds before the 2nd attempt; doubles each time
    timeout: float = 5.0  # per attempt (connect + read)
    lease: float = 60.0  # a claim's lifetime: longer than one attempt can take
    batch: int = 50  # rows handled per tick at most
    poll: float = 2.0  # seconds between looks at the outbox when nothing is due

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.batch < 1 or self.timeout <= 0 or self.poll <= 0:
            raise ConfigurationError("webhook delivery: attempts, batch, timeout and poll "
                                     "must be positive")
        if self.lease < 2 * self.timeout:
            raise ConfigurationError(
                f"webhook delivery lease {self.lease:g} s is shorter than two timeouts "
                f"({2 * self.timeout:g} s)",
                hint="a lease must outlive one attempt, or another replica sends it again")


#: alert id, webhook id, status ("delivered" | "failed" | "refused"), attempts, error, time
ResultSink = Callable[[str, str, str, int, str, str], None]
#: webhook id -> its signing secret
SecretOf = Callable[[str], bytes]


def utc_now(offset: float = 0.0) -> str:
    """Outbox times: ISO 8601 UTC with microseconds (string order is time order)."""
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset)
    return at.isoformat(timespec="microseconds")


class Deliveries:
    """See the module docstring.  ``on_final`` hears every final outcome (audit)."""

    def __init__(self, poster: Poster, guard: TargetGuard, outbox: Outbox,
                 secret_of: SecretOf, on_final: ResultSink,
                 options: DeliveryOptions | None = None, *, name: str | None = None) -> None:
        self._poster = poster
        self._guard = guard
        self._outbox = outbox
        self._secret_of = secret_of
        self._on_final = on_final
        self.options = options or DeliveryOptions()
        self.name = (name or f"{socket.gethostname()}:{os.getpid()}")[:80]
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()  # the running thread's; replaced at each start

    # -- the thread ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the sender thread (idempotent); it resumes whatever is pending."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop = threading.Event()  # one per thread: a stopped one stays stopped
                self._thread = threading.Thread(target=self._run, args=(self._stop,),
                                                name="bastion-webhooks", daemon=True)
                self._thread.start()

    def wake(self) -> None:
        """New rows were written: look now (starts the thread if needed)."""
        self.start()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after the tick in progress (a claimed row stays claimed
        until its lease ends, then any sender resumes it)."""
        with self._lock:
            self._stop.set()
            thread = self._thread
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def wait_idle(self, timeout: float, alert_id: str | None = None) -> bool:
        """Wait until no row (of ``alert_id``) is pending (True) or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while self._outbox.pending(alert_id):
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            time.sleep(0.02)
        return True

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                handled = self.tick()
                # a full tick: go on at once; none handled: never spin on a due row that
                # another sender just took
                wait = 0.0 if handled >= self.options.batch else \
                    max(self._until_due(), 0.0 if handled else 0.05)
            except Exception:  # a database hiccup must not end deliveries
                _log.exception("webhook sender tick failed")
                wait = self.options.poll
            if wait > 0:
                self._wake.wait(wait)
            self._wake.clear()

    def _until_due(self) -> float:
        due = self._outbox.next_due()
        if due is None:
            return self.options.poll
        left = (dt.datetime.fromisoformat(due) - dt.datetime.now(dt.UTC)).total_seconds()
        return min(max(left, 0.0), self.options.poll)

    # -- one tick -----------------------------------------------------------------------
    def tick(self) -> int:
        """Claim, send and record up to ``batch`` due rows; the number handled."""
        handled: set[str] = set()
        while len(handled) < self.options.batch and not self._stop.is_set():
            claim = f"{self.name}/{uuid.uuid4().hex[:16]}"
            d = self._outbox.claim(claim, utc_now(), utc_now(self.options.lease),
                                   frozenset(handled))
            if d is None:
                break
            handled.add(d.id)
            self._handle(d)
        return len(handled)

    def _handle(self, d: Delivery) -> None:
        if d.attempts > self.options.attempts:  # senders died mid-attempt: give up
            status, error = "failed", (f"no outcome recorded for the last attempt of "
                                       f"{self.options.attempts} (the sender stopped)")
            d = replace(d, attempts=self.options.attempts)
        else:
            status, error = self._safe_attempt(d)
        self._record(d, status, error)

    def _safe_attempt(self, d: Delivery) -> tuple[str, str]:
        try:
            status, error = self._attempt(d)
        except Exception as e:  # an unexpected failure is an outcome, not silence
            _log.exception("webhook %s: delivery %s crashed", d.webhook_id, d.id)
            status, error = "failed", f"{type(e).__name__}: {e}"[:500]
        crash_point("alerts.delivery.after_send")
        return status, error

    def _record(self, d: Delivery, status: str, error: str) -> None:
        if status == "retry" and d.attempts < self.options.attempts:
            later = utc_now(self.options.backoff * 2 ** (d.attempts - 1))
            if not self._outbox.retry(d, error, later, utc_now()):
                _log.warning("webhook delivery %s: claim lost (lease expired)", d.id)
            return
        status = "failed" if status == "retry" else status
        if status != "delivered":
            _log.error("webhook %s: alert %s not delivered: %s", d.webhook_id, d.alert_id,
                       error)
        now = utc_now()
        if not self._outbox.finish(d, status, error, now):
            _log.warning("webhook delivery %s: claim lost (lease expired)", d.id)
            return
        try:
            self._on_final(d.alert_id, d.webhook_id, status, d.attempts, error, now)
        except Exception:  # the audit of a delivery must not stop the sender
            _log.exception("auditing a webhook delivery failed")

    def _attempt(self, d: Delivery) -> tuple[str, str]:
        """One POST: ("delivered" | "refused" | "failed" | "retry", error)."""
        if not d.url:
            return "failed", "the webhook was removed before delivery"
        try:  # checked again now: the name may resolve elsewhere than at registration
            pinned = self._guard.pin(self._guard.check(d.url))
        except BastionError as e:
            _log.error("webhook %s refused at delivery: %s", d.webhook_id, e.message)
            return "refused", e.message[:500]
        headers = {"Content-Type": "application/json", "User-Agent": "bastion-alerts",
                   DELIVERY_HEADER: d.id,
                   **sign(self._secret_of(d.webhook_id), d.body, timestamp=int(time.time()))}
        try:
            code = self._poster.post(pinned, d.body, headers, self.options.timeout)
        except OSError as e:
            return "retry", f"{type(e).__name__}: {e}"[:500]
        if 200 <= code < 300:
            return "delivered", ""
        error = f"HTTP {code}" + (" (redirects are not followed)" if 300 <= code < 400 else "")
        return ("retry" if code >= 500 or code == 429 else "failed"), error


__all__ = ["DELIVERY_HEADER", "Deliveries", "Delivery", "DeliveryOptions", "Outbox",
           "Poster", "ResultSink", "SecretOf", "utc_now"]
