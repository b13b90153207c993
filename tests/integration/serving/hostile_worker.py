"""TEST FIXTURE, not a product feature: a "model worker" that attacks its sandbox.

The restricted loader refuses a pickle that would run code, so a hostile model can never
reach this point through the registry (``test_sandbox.py`` proves that first).  To prove
the sandbox contains code that *does* run — a loader bug, a native-extension exploit —
the containment tests start this script in exactly the worker's sandbox (same bwrap
command, limits and uid drop, built by ``Sandbox.command``) instead of
``bastion.serving.worker``.  It speaks the worker protocol; each ``predict`` row names an
attack, and the reply's label says what happened.  It imports nothing from the product.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import time


def send(sock: socket.socket, msg: dict) -> None:
    body = json.dumps(msg).encode()
    sock.sendall(struct.pack(">I", len(body)) + body)


def recv(sock: socket.socket) -> dict | None:
    def exact(n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            got = sock.recv(n - len(buf))
            if not got:
                return None
            buf += got
        return buf

    head = exact(4)
    if head is None:
        return None
    body = exact(struct.unpack(">I", head)[0])
    return None if body is None else json.loads(body)


def attempt(fn) -> str:
    try:
        return f"escaped:{fn()}"
    except BaseException as e:  # every failure is the sandbox working
        return f"contained:{type(e).__name__}:{e}"[:200]


def open_socket(arg: str) -> str:
    host, port = arg.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect((host, int(port)))
    return "connected"


def write_file(path: str) -> str:
    with open(path, "w") as fh:
        fh.write("owned")
    return path


def read_file(path: str) -> str:
    with open(path, "rb") as fh:
        return f"read {len(fh.read())} bytes"


def fork_bomb(_: str) -> str:
    children = 0
    try:
        for _ in range(2000):
            pid = os.fork()
            if pid == 0:
                time.sleep(2)
                os._exit(0)
            children += 1
    except OSError as e:
        raise OSError(f"fork refused after {children} children: {e}") from None
    return f"{children} children"


def exhaust_memory(_: str) -> str:
    hog = []
    for _ in range(64):
        hog.append(bytearray(256 * 1024 * 1024))  # 16 GiB in total, touched
    return f"{len(hog)} blocks"


def environment(_: str) -> str:
    return json.dumps(sorted(os.environ))


def identity(_: str) -> str:
    with open("/proc/self/status") as fh:
        status = fh.read()
    cap = status.split("CapEff:")[1].split()[0]
    return f"uid={os.getuid()} cap={cap}"


def die(_: str) -> str:
    os._exit(3)


def hang(_: str) -> str:
    while True:
        pass


ATTACKS = {
    "socket": open_socket, "write": write_file, "read": read_file, "fork": fork_bomb,
    "memory": exhaust_memory, "env": environment, "id": identity, "die": die, "hang": hang,
}


def main() -> int:
    fd = int(sys.argv[sys.argv.index("--fd") + 1])
    sock = socket.socket(fileno=fd)
    send(sock, {"type": "ready", "classes": None})
    while (msg := recv(sock)) is not None:
        labels = [attempt(lambda r=row: ATTACKS[r[0]](r[1])) for row in msg["rows"]]
        send(sock, {"type": "result", "id": msg["id"], "labels": labels, "scores": None})
    return 0


if __name__ == "__main__":
    sys.exit(main())
