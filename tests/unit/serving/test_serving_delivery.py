"""The webhook sender over a fake outbox: an outcome is recorded for every delivery, even
one whose sending crashes unexpectedly; a retryable failure is due again after the
backoff, with the same delivery id; a row whose senders kept dying is given up."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bastion.core.errors import ConfigurationError
from bastion.serving.delivery import (
    DELIVERY_HEADER,
    Deliveries,
    Delivery,
    DeliveryOptions,
    utc_now,
)
from bastion.serving.webhooks import PinnedTarget, TargetGuard


@dataclasses.dataclass
class Row:
    id: str
    alert_id: str
    attempts: int = 0
    status: str = "pending"
    due: str = ""
    claim: str | None = None
    lease: str = ""
    error: str = ""


class FakeOutbox:
    """Same contract as SqlAlertOutbox, in memory (the SQL one is tested on real DBs)."""

    def __init__(self, *ids: str) -> None:
        self.rows = {i: Row(i, f"alert-{i}") for i in ids}
        self.log: list[tuple[str, str, int, str]] = []

    def claim(self, claim: str, now: str, lease_until: str,
              skip: frozenset[str]) -> Delivery | None:
        for r in self.rows.values():
            if r.status == "pending" and r.due <= now and r.id not in skip and \
                    (r.claim is None or r.lease < now):
                r.claim, r.lease, r.attempts = claim, lease_until, r.attempts + 1
                return Delivery(r.id, r.alert_id, "w", "https://hooks.example/x",
                                json.dumps({"delivery": r.id}).encode(), r.attempts, claim)
        return None

    def retry(self, d: Delivery, error: str, next_attempt_at: str, now: str) -> bool:
        r = self.rows[d.id]
        if r.claim != d.claim:
            return False
        r.claim, r.due, r.error = None, next_attempt_at, error
        return True

    def finish(self, d: Delivery, status: str, error: str, now: str) -> bool:
        r = self.rows[d.id]
        if r.claim != d.claim or r.status != "pending":
            return False
        r.claim, r.status, r.error = None, status, error
        self.log.append((d.id, status, d.attempts, error))
        return True

    def pending(self, alert_id: str | None) -> int:
        return sum(r.status == "pending" and alert_id in (None, r.alert_id)
                   for r in self.rows.values())

    def next_due(self) -> str | None:
        due = [r.due for r in self.rows.values() if r.status == "pending"]
        return min(due) if due else None


class ScriptedPoster:
    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.headers: list[dict[str, str]] = []

    def post(self, target: PinnedTarget, body: bytes, headers: dict[str, str],
             timeout: float) -> int:
        self.headers.append(headers)
        answer = self.answers.pop(0) if self.answers else 204
        if isinstance(answer, Exception):
            raise answer
        return answer


GUARD = TargetGuard(lambda host, port: ["93.184.216.34"])


def _sender(outbox: FakeOutbox, poster: ScriptedPoster, **options: float) -> Deliveries:
    finals: list[tuple[str, str]] = []
    opts = DeliveryOptions(**{"backoff": 0.0, "timeout": 1.0, "lease": 2.0, **options})
    return Deliveries(poster, GUARD, outbox, lambda _w: b"k" * 32,
                      lambda a, _w, status, _n, _e, _at: finals.append((a, status)), opts)


def test_sender_crash_on_one_delivery_is_recorded_as_failed_and_the_next_is_delivered(
        ) -> None:
    outbox = FakeOutbox("d1", "d2")
    sender = _sender(outbox, ScriptedPoster(ValueError("a malformed answer")))
    assert sender.tick() == 2
    assert outbox.log[0][:2] == ("d1", "failed") and "ValueError" in outbox.log[0][3]
    assert outbox.log[1][:3] == ("d2", "delivered", 1)


def test_retryable_failure_is_due_again_with_the_same_delivery_id() -> None:
    outbox = FakeOutbox("d1")
    poster = ScriptedPoster(503, OSError("connection reset"))
    sender = _sender(outbox, poster, attempts=3)
    for _ in range(3):
        sender.tick()
    assert outbox.log == [("d1", "delivered", 3, "")]
    assert [h[DELIVERY_HEADER] for h in poster.headers] == ["d1"] * 3


def test_row_whose_senders_keep_dying_mid_attempt_is_given_up_after_the_attempts() -> None:
    outbox = FakeOutbox("d1")
    outbox.rows["d1"].attempts = 4  # four claims, no outcome: each sender was killed
    outbox.rows["d1"].claim, outbox.rows["d1"].lease = "dead/1", utc_now(-1)  # expired
    poster = ScriptedPoster()
    _sender(outbox, poster, attempts=4).tick()
    assert poster.headers == []  # not sent a fifth time
    [(_, status, attempts, error)] = outbox.log
    assert status == "failed" and attempts == 4 and "sender stopped" in error


def test_outcome_is_not_recorded_by_a_sender_whose_lease_was_taken_over() -> None:
    outbox = FakeOutbox("d1")

    class SlowPoster(ScriptedPoster):
        def post(self, target: PinnedTarget, body: bytes, headers: dict[str, str],
                 timeout: float) -> int:
            outbox.rows["d1"].claim = "another-replica/2"  # our lease ended meanwhile
            return super().post(target, body, headers, timeout)

    _sender(outbox, SlowPoster()).tick()
    assert outbox.log == [] and outbox.rows["d1"].status == "pending"


def test_lease_shorter_than_two_timeouts_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="lease"):
        DeliveryOptions(timeout=5.0, lease=6.0)
