"""The webhook sender thread: an outcome is recorded for every delivery, even one whose
sending crashes unexpectedly (the thread must neither die silently nor lose the record)."""

from __future__ import annotations

from bastion.serving.delivery import Deliveries, Delivery, DeliveryOptions
from bastion.serving.webhooks import PinnedTarget, TargetGuard


class CrashingThenFinePoster:
    def __init__(self) -> None:
        self.calls = 0

    def post(self, target: PinnedTarget, body: bytes, headers: dict[str, str],
             timeout: float) -> int:
        self.calls += 1
        if self.calls == 1:
            raise ValueError("a malformed answer the HTTP client did not expect")
        return 204


def test_sender_crash_on_one_delivery_is_recorded_as_failed_and_the_next_is_delivered(
        ) -> None:
    outcomes: list[tuple[str, str, str]] = []
    guard = TargetGuard(lambda host, port: ["93.184.216.34"])
    sender = Deliveries(CrashingThenFinePoster(), guard,
                        lambda a, w, status, _n, error, _at: outcomes.append((a, status, error)),
                        DeliveryOptions(attempts=2, backoff=0.01))
    for alert in ("a1", "a2"):
        sender.submit(Delivery(alert, "w", "https://hooks.example/x", b"{}", b"k" * 32))
    assert sender.wait_idle(5)
    assert outcomes[0][:2] == ("a1", "failed") and "ValueError" in outcomes[0][2]
    assert outcomes[1] == ("a2", "delivered", "")
