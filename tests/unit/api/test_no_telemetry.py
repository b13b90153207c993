"""Nothing phones home: FastAPI's built-in OpenTelemetry stays off in Bastion's app even
when the environment asks for exporters and a tracer provider is installed.

Run in a child process: OpenTelemetry's global providers can be set once per process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

_CHILD = textwrap.dedent("""
    import base64, os, socket, sys
    from pathlib import Path
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, INVALID_SPAN_CONTEXT

    started = []

    class Tracer(trace.Tracer):
        def start_span(self, name, *a, **k):
            started.append(name)
            return NonRecordingSpan(INVALID_SPAN_CONTEXT)

        def start_as_current_span(self, name, *a, **k):
            started.append(name)
            return trace.use_span(NonRecordingSpan(INVALID_SPAN_CONTEXT))

    class Provider(trace.TracerProvider):
        def get_tracer(self, *a, **k):
            return Tracer()

    trace.set_tracer_provider(Provider())  # an application that installed a provider
    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(8)
    sink.settimeout(0.5)
    os.environ["FASTAPI_OTEL_AUTO_CONFIGURE"] = "true"
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink.getsockname()[1]}"

    from starlette.testclient import TestClient
    from bastion.api.app import create_app
    from bastion.core.crypto.keyring import MasterKeySource
    from bastion.workspace import Bastion

    ws, token = Bastion.init(Path(sys.argv[1]) / "ws",
                             MasterKeySource.from_env_key(base64.b64encode(os.urandom(32)).decode()))
    with TestClient(create_app(ws)) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/v1/projects").status_code == 401
        auth = {"Authorization": f"Bearer {token.secret}"}
        assert client.get("/v1/audit?limit=1", headers=auth).status_code < 500
    ws.close()
    try:
        sink.accept()
        print("EXPORTED")
    except TimeoutError:
        pass
    print("SPANS", len(started), sorted(set(started))[:5])
""")


def test_fastapi_opentelemetry_stays_off_when_the_environment_asks_for_exporters(
        tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path)], capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "EXPORTED" not in out.stdout
    assert "SPANS 0 " in out.stdout, out.stdout
