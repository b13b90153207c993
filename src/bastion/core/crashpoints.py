"""Named crash points for crash-injection tests (TEST-ONLY; inert in production).

Multi-step writes (ingestion, model registration) call ``crash_point(NAME)``
between their steps.  It does nothing unless the process was started with
``BASTION_TEST_CRASH_AT=NAME`` in its environment, in which case the process
kills itself with SIGKILL right there - no ``finally`` blocks, no flushing, as
if the machine lost power.  ``tests/integration/test_crash_injection.py`` uses
it to prove that every such point recovers at the next ``Bastion.open``.

Never set this variable on a real deployment: it exists so a test can stop a
real process at an exact step; timing-based kills complement it.

Example::

    crash_point("ingest.after_version_commit")
"""

from __future__ import annotations

import os
import signal

ENV = "BASTION_TEST_CRASH_AT"


def crash_point(name: str) -> None:
    """SIGKILL this process if the test-only ``BASTION_TEST_CRASH_AT`` names ``name``."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


__all__ = ["ENV", "crash_point"]
