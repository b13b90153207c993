"""Closed-loop HTTP/1.1 load generator of ``bench/serving.py`` (run as its own process).

``CONCURRENCY`` keep-alive connections each send one request, wait for the whole answer,
send the next, for ``--warmup`` seconds (not recorded) and then ``--duration`` seconds
(recorded).  It speaks raw HTTP/1.1 over asyncio streams (no client library in the
measured loop: on two shared cores the generator must cost as little CPU as possible).
Bodies are precomputed, one per input row, cycled per connection.  It prints one JSON
object: answered-200 count and throughput, latency p50/p95/p99 in ms (of every recorded
request, errors included), errors by status (``conn`` for a broken connection), and,
with ``--models``, how many answers named each model plus the first and last model seen.

    python bench/_serving_load.py --url http://127.0.0.1:8700/predict --rows rows.json \
        --concurrency 64 --duration 10 [--token T ...] [--wrap row|mlflow] [--models]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from collections import Counter
from urllib.parse import urlsplit

_MODEL = re.compile(rb'"model":"([^"]*)"')


def _requests(path: str, host: str, rows: list[dict[str, object]], wrap: str,
              token: str | None) -> list[bytes]:
    out = []
    for row in rows:
        body = {"row": row} if wrap == "row" else {"dataframe_records": [row]}
        data = json.dumps(body, separators=(",", ":")).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n")
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        out.append(head.encode() + b"\r\n" + data)
    return out


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked, close = 0, False, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and b"close" in value.lower():
            close = True
    if not chunked:
        return status, await reader.readexactly(length), close
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
        body += await reader.readexactly(size + 2)
        if size == 0:
            return status, body, close


class Run:
    def __init__(self, models: bool) -> None:
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.ok = 0
        self.total = 0  # warm-up included: what the server's CPU time is divided by
        self.models: Counter[str] = Counter()
        self.sequence: list[tuple[float, str]] = []  # (time, model) at each model change
        self.want_models = models


async def _connection(host: str, port: int, reqs: list[bytes], offset: int, warm: float,
                      stop: float, run: Run) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    i = offset
    while time.perf_counter() < stop:
        if writer is None:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                run.errors["conn"] += 1
                await asyncio.sleep(0.05)
                continue
        assert reader is not None
        req = reqs[i % len(reqs)]
        i += 1
        t0 = time.perf_counter()
        try:
            writer.write(req)
            status, body, close = await _answer(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            status, body, close = 0, b"", True
        t1 = time.perf_counter()
        run.total += 1
        if close:
            writer.close()
            writer = None
        if t0 < warm:
            continue
        run.latencies.append(t1 - t0)
        if status == 200:
            run.ok += 1
            if run.want_models:
                m = _MODEL.search(body)
                name = m.group(1).decode() if m else "?"
                if not run.sequence or run.sequence[-1][1] != name:
                    run.sequence.append((t1, name))
                run.models[name] += 1
        else:
            run.errors[str(status) if status else "conn"] += 1
    if writer is not None:
        writer.close()


def _pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] * 1000


async def _main(args: argparse.Namespace) -> dict[str, object]:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    rows = json.loads(open(args.rows).read())  # noqa: SIM115 - a small file read once
    tokens = args.token or [None]
    per_token = [_requests(url.path + (f"?{url.query}" if url.query else ""),
                           f"{host}:{port}", rows, args.wrap, t) for t in tokens]
    run = Run(args.models)
    start = time.perf_counter()
    warm = start + args.warmup
    stop = warm + args.duration
    step = max(1, len(rows) // args.concurrency)
    await asyncio.gather(*(
        _connection(host, port, per_token[c % len(per_token)], c * step, warm, stop, run)
        for c in range(args.concurrency)))
    lat = sorted(run.latencies)
    return {
        "concurrency": args.concurrency, "duration_s": args.duration, "ok": run.ok,
        "total": run.total,
        "throughput": run.ok / args.duration, "errors": dict(run.errors),
        "p50_ms": _pct(lat, 0.50), "p95_ms": _pct(lat, 0.95), "p99_ms": _pct(lat, 0.99),
        "models": dict(run.models),
        "sequence": [[round(t - start, 3), m] for t, m in run.sequence],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--rows", required=True, help="JSON file: a list of input rows")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--token", action="append", help="bearer token (repeat: one per connection)")
    ap.add_argument("--wrap", choices=("row", "mlflow"), default="row")
    ap.add_argument("--models", action="store_true", help="count the model named per answer")
    print(json.dumps(asyncio.run(_main(ap.parse_args()))), flush=True)


if __name__ == "__main__":
    main()
