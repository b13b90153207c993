"""Without bubblewrap the demo's serving steps fail saying how to install it; no server
(and so no unsandboxed worker) is started."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bastion.demo import serving_steps
from bastion.demo.runner import DemoFailed


def test_missing_bubblewrap_fails_the_serving_steps_with_the_install_hint(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(serving_steps.shutil, "which", lambda _name: None)
    started: list[Any] = []
    monkeypatch.setattr(serving_steps.subprocess, "Popen",
                        lambda *a, **k: started.append(a))
    st: Any = type("St", (), {"ws": None, "work": tmp_path})()
    with serving_steps.demo_server(st, "key") as server:
        story = serving_steps.ServingStory(governance=Any, server=server)  # type: ignore[arg-type]
        for step in (serving_steps.serve, serving_steps.bad_input, serving_steps.flood,
                     serving_steps.drift_alert):
            with pytest.raises(DemoFailed, match=r"install bubblewrap \(apt-get install"):
                step(st, story)
    assert started == []
