"""Nothing is a 500: the whole OpenAPI surface fuzzed with schemathesis, and the inputs
that crashed the server before, against a real ``bastion serve`` on loopback.

The fuzz run is bounded (a fixed number of examples per operation, mode and role),
derandomized (the same requests every run) and sends nothing beyond 127.0.0.1.
Every response body is also scanned for server file-system paths.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from conftest_data import DataWS, _root_conftest, build_data_ws
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from bastion.core.access.values import PrincipalKind

ROLES = ("admin", "dana", "eve", "olga", "nora")  # admin, steward, engineer, auditor, no role
#: examples per operation and generation mode: admin reaches deepest, so it gets more
EXAMPLES = {"admin": 5, "dana": 2, "eve": 2, "olga": 2, "nora": 2}
RAW_BODY = {"content": {"application/octet-stream": {"schema": {"type": "string",
                                                                "format": "binary"}}}}


@pytest.fixture(scope="module")
def fz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DataWS, Any]]:
    data = build_data_ws(tmp_path_factory.mktemp("fuzz"))
    ws = data.open()
    try:
        admin = ws.access.authenticate(data.tokens["admin"])
        ws.access.create_principal(admin, "nora", PrincipalKind.USER)  # bound to no role
        data.tokens["nora"] = ws.access.create_token(admin, "nora").secret
    finally:
        ws.close()
    root = _root_conftest()
    srv = root.start_server(data.home, data.master_key_b64, data.tokens["admin"])
    try:
        yield data, srv
    finally:
        root.stop_server(srv.proc)


def _leaks(text: str, data: DataWS) -> bool:
    return str(data.home) in text or str(data.home.parent) in text or "/tmp/" in text


def _post(srv: Any, data: DataWS, path: str, body: bytes, **params: str) -> httpx.Response:
    return httpx.post(f"{srv.url}/v1/projects/default{path}", params=params, content=body,
                      headers={"Authorization": f"Bearer {data.tokens['admin']}"}, timeout=60)


def test_model_upload_filename_with_nul_is_400_not_500(fz: tuple[DataWS, Any]) -> None:
    data, srv = fz
    r = _post(srv, data, "/models/m/versions", b"xx", framework="onnx", filename="a\x00b.onnx")
    assert r.status_code == 400 and "U+0000" in r.json()["message"], r.text


def test_model_upload_filename_of_300_characters_is_400_not_500(fz: tuple[DataWS, Any]) -> None:
    data, srv = fz
    for name in ("x" * 300, "x" * 300 + ".csv"):
        r = _post(srv, data, "/models/m/versions", b"xx", framework="onnx", filename=name)
        assert r.status_code == 400 and "255 bytes" in r.json()["message"], r.text
        r = _post(srv, data, "/datasets/credit/ingest", b"a\n1\n", source="credit-bureau",
                  filename=name)
        assert r.status_code == 400, r.text


def test_model_upload_filename_with_bidi_override_is_refused(fz: tuple[DataWS, Any]) -> None:
    data, srv = fz
    r = _post(srv, data, "/models/m/versions", b"xx", framework="onnx",
              filename="\u202excod.onnx")
    assert r.status_code == 400 and "U+202E" in r.json()["message"], r.text


@pytest.mark.parametrize("ref", ["credit@99999999999999999999", "credit@\u00b2", "credit@\u0661"])
def test_version_beyond_64_bits_or_unicode_digits_is_400_never_version_1(
    fz: tuple[DataWS, Any], ref: str
) -> None:
    data, srv = fz
    r = _post(srv, data, "/monitor/drift", b"a,b\n1,2\n", reference=ref)
    assert r.status_code == 400 and "invalid dataset version" in r.json()["message"], r.text
    r = _post(srv, data, "/models/m/versions", b"xx", framework="onnx", trained_on=ref)
    assert r.status_code == 400 and "invalid dataset version" in r.json()["message"], r.text
    version = ref.partition("@")[2]
    r = httpx.get(f"{srv.url}/v1/projects/default/datasets/credit/versions/{version}",
                  headers=srv.auth(), timeout=30)
    assert 400 <= r.status_code < 500, r.text


@pytest.mark.parametrize("spelling", ["1.0", "+1", "1_0", "01e0", "\u0661", " 1"])
def test_version_in_a_path_written_another_way_is_422_not_version_1(
    fz: tuple[DataWS, Any], spelling: str
) -> None:
    """Found: ``/versions/1.0`` was read as version 1 (a lax int): one name, two spellings."""
    _, srv = fz
    for path in ("/v1/projects/default/datasets/credit/versions/",
                 "/v1/projects/default/models/m/versions/"):  # fmt: skip
        r = httpx.get(f"{srv.url}{path}{spelling}", headers=srv.auth(), timeout=30)
        assert r.status_code == 422, (path, spelling, r.text)
        assert "ASCII digits" in r.text
    ok = httpx.get(f"{srv.url}/v1/projects/default/datasets/credit/versions/1",
                   headers=srv.auth(), timeout=30)  # fmt: skip
    assert ok.status_code == 200, ok.text


BAD_UPLOADS = {
    "bad.csv": b'a,b\n1,"2\n3',
    "empty.csv": b"",
    "binary.csv": bytes(range(256)) * 4,
    "bad.parquet": b"PAR1garbagePAR1",
    "truncated.parquet": b"PAR1" + b"\x00" * 100,
    "bad.jsonl": b'{"a":1}\n{nope\n',
    "deep.jsonl": b"[" * 5000 + b"]" * 5000 + b"\n",
}


@pytest.mark.parametrize("name", sorted(BAD_UPLOADS))
def test_bad_upload_errors_name_the_upload_not_the_server_temp_path(
    fz: tuple[DataWS, Any], name: str
) -> None:
    data, srv = fz
    for path, params in (("/datasets/credit/ingest", {"source": "credit-bureau"}),
                         ("/monitor/drift", {"reference": "credit@1"})):
        r = _post(srv, data, path, BAD_UPLOADS[name], filename=name, **params)
        assert 400 <= r.status_code < 500, r.text
        assert not _leaks(r.text, data), r.text
        assert not re.search(r"body-\w+", r.text), r.text
    r = _post(srv, data, "/datasets/credit/ingest", BAD_UPLOADS["bad.csv"],
              source="credit-bureau", filename="june.csv")
    assert r.json()["message"].startswith("june.csv, line 2"), r.text


def _schema(srv: Any) -> Any:
    doc = httpx.get(srv.url + "/v1/openapi.json", headers=srv.auth(), timeout=30).json()
    # raw-body uploads read the request stream themselves: declare the body so it is fuzzed
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("put", "post") and "requestBody" not in op and re.search(
                r"(/ingest|/objects/\{name\}|/models/\{name\}/versions|/drift)$", path
            ):
                op["requestBody"] = RAW_BODY
    return schemathesis.openapi.from_dict(doc)


def test_schemathesis_fuzz_of_the_whole_api_for_every_role_finds_no_5xx_and_no_paths(
    fz: tuple[DataWS, Any],
) -> None:
    data, srv = fz
    operations = [r.ok() for r in _schema(srv).get_all_operations()]
    assert len(operations) >= 40
    failures: list[str] = []
    sent = 0
    for who in ROLES:
        headers = {"Authorization": f"Bearer {data.tokens[who]}"}
        for op in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @settings(max_examples=EXAMPLES[who], derandomize=True, deadline=None,
                          database=None, phases=[Phase.explicit, Phase.generate],
                          suppress_health_check=list(HealthCheck))
                @given(case=op.as_strategy(mode))
                def one(case: Any) -> None:
                    nonlocal sent
                    sent += 1
                    r = case.call(base_url=srv.url, headers=headers, timeout=60)
                    if r.status_code >= 500 or _leaks(r.text, data):
                        curl = case.as_curl_command(base_url=srv.url)
                        status = r.status_code
                        failures.append(f"{who} {op.label} {status}: {curl} -> {r.text[:300]}")

                # no invalid input exists for some operations (e.g. those without parameters)
                with contextlib.suppress(Unsatisfiable):
                    one()
    assert sent > 500
    assert not failures, "\n".join(failures[:20])
