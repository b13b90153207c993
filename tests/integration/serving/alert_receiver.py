"""A real HTTP receiver on loopback for webhook tests: records every request, answers
from a script of statuses (e.g. 500, 500, 200), and can redirect."""

from __future__ import annotations

import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=list)  # then 200 for ever
    redirect_to: str | None = None
    endless: bool = False  # answer 200 with a gzip body that never ends
    drip: bool = False  # answer a header byte every 0.2 s, never finishing the headers
    delay: float = 0.0  # seconds before answering each request
    got: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                owner.got.append(Received(self.path, dict(self.headers.items()),
                                          self.rfile.read(n)))
                if owner.drip:
                    self._drip()
                    return
                time.sleep(owner.delay)
                status = owner.statuses.pop(0) if owner.statuses else 200
                self.send_response(status)
                if 300 <= status < 400 and owner.redirect_to:
                    self.send_header("Location", owner.redirect_to)
                if owner.endless:
                    self._endless()
                    return
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _endless(self) -> None:
                # one gzip stream of zeros (~1000:1): each chunk decodes to 1 MiB, for ever
                z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    while owner.server is not None:
                        chunk = z.compress(bytes(1 << 20)) + z.flush(zlib.Z_SYNC_FLUSH)
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        self.wfile.flush()
                except OSError:  # the caller hung up
                    pass

            def _drip(self) -> None:
                try:
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    while owner.server is not None:
                        self.wfile.write(b"z")
                        self.wfile.flush()
                        time.sleep(0.2)
                except OSError:  # the caller hung up
                    pass

            def log_message(self, *_a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None  # ends an endless answer
