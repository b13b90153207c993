"""Authorize first, reveal nothing, for principals, roles and projects (both databases)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bastion.core.access.values import Actor, PrincipalKind
from bastion.core.errors import BastionError, NotVisible
from conftest import WS


def _nobody(w: WS) -> Actor:
    w.ws.access.create_principal(w.admin, "nobody", PrincipalKind.USER)
    return w.ws.access.authenticate(w.ws.access.create_token(w.admin, "nobody").secret)


def _outcome(fn: Callable[[], object]) -> tuple[type[BaseException], str]:
    try:
        fn()
    except BastionError as e:
        return type(e), e.message
    raise AssertionError("the probe was allowed")


@pytest.mark.parametrize(
    ("probe", "real", "ghost"),
    [
        ("disable", "admin", "ghost-user"),
        ("bind_principal", "admin", "ghost-user"),
        ("bind_project", "default", "ghost-project"),
        ("unbind_project", "default", "ghost-project"),
        ("tokens_of", "admin", "ghost-user"),
    ],
)
def test_roleless_probe_cannot_tell_existing_names_from_missing(
    workspace: WS, probe: str, real: str, ghost: str
) -> None:
    access, nobody = workspace.ws.access, _nobody(workspace)
    calls: dict[str, Callable[[str], object]] = {
        "disable": lambda n: access.disable_principal(nobody, n),
        "bind_principal": lambda n: access.bind(nobody, n, "auditor", "default"),
        "bind_project": lambda n: access.bind(nobody, "admin", "auditor", n),
        "unbind_project": lambda n: access.unbind(nobody, "admin", "admin", n),
        "tokens_of": lambda n: access.tokens(nobody, n),
    }
    a, b = _outcome(lambda: calls[probe](real)), _outcome(lambda: calls[probe](ghost))
    assert a[0] is b[0] is NotVisible  # answered as not found (HTTP 404)
    assert a[1].replace(real, "X") == b[1].replace(ghost, "X")
