"""A tiny step runner: each step proves one control and reports evidence.

The runner never touches the terminal; the CLI renders ``StepResult`` values
as they arrive (via the ``on_step`` callback).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bastion.core.errors import BastionError


@dataclass(frozen=True)
class StepResult:
    layer: str
    name: str
    ok: bool
    evidence: tuple[str, ...] = ()


class DemoFailed(BastionError):
    """A control did not behave as it must (the demo exits non-zero)."""

    code = "demo_control_failed"


@dataclass
class Runner:
    on_step: Callable[[StepResult], None]
    results: list[StepResult] = field(default_factory=list)

    def step(self, layer: str, name: str, fn: Callable[[], list[str]]) -> None:
        try:
            evidence = fn()
            result = StepResult(layer, name, True, tuple(evidence))
        except DemoFailed as e:
            result = StepResult(layer, name, False, (str(e),))
        except Exception as e:  # a demo step crashing is a failed control, shown as such
            result = StepResult(layer, name, False, (f"{type(e).__name__}: {e}",))
        self.results.append(result)
        self.on_step(result)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise DemoFailed(message)


__all__ = ["DemoFailed", "Runner", "StepResult", "expect"]
