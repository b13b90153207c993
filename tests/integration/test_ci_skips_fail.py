"""With CI=true every skip is a failure: proven by running pytest on tests that skip.

The suite's own ``tests/conftest.py`` is loaded as a plugin (``-p conftest``)
into a pytest subprocess over a temporary folder of tests that skip in every
way pytest allows: ``pytest.skip`` in a test, a ``skipif`` mark, a skip in a
fixture, and ``importorskip`` at module level (a collection-time skip).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

SKIPPING = '''
import pytest

@pytest.fixture
def service():
    pytest.skip("no such service")

def test_skip_call():
    pytest.skip("not today")

@pytest.mark.skipif(True, reason="marked")
def test_skipif():
    pass

def test_skip_in_fixture(service):
    pass

@pytest.mark.xfail(reason="known bug", strict=True)
def test_expected_failure():
    assert False

def test_passes():
    pass
'''

MODULE_SKIP = '''
import pytest
pytest.importorskip("a_module_that_does_not_exist_anywhere")

def test_never_collected():
    pass
'''


def _pytest(folder: Path, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"CI", "PYTEST_ADDOPTS"}}
    env["PYTHONPATH"] = str(TESTS)
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider",
         "-q", "-rfEsx", "--continue-on-collection-errors", "--rootdir", str(folder), str(folder)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def _folder(tmp_path: Path) -> Path:
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    (tmp_path / "test_module_skip.py").write_text(MODULE_SKIP)
    return tmp_path


def test_every_skip_is_a_failure_under_ci(tmp_path: Path) -> None:
    r = _pytest(_folder(tmp_path), ci=True)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    # a skip in the test body fails it; a skip in setup or collection is an error
    assert "1 failed, 1 passed, 1 xfailed, 3 errors" in out.splitlines()[-1], out
    assert "FAILED test_skipping.py::test_skip_call" in out, out
    for name in ("test_skipping.py::test_skipif", "test_skipping.py::test_skip_in_fixture",
                 "test_module_skip.py"):  # fmt: skip
        assert f"ERROR {name}" in out, out
    assert "every skip is a failure: " in out and "no such service" in out, out


def test_skips_stay_skips_outside_ci(tmp_path: Path) -> None:
    r = _pytest(_folder(tmp_path), ci=False)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "1 passed" in out and "4 skipped" in out and "1 xfailed" in out, out
