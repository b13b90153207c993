"""The model worker: the program that runs *inside* the sandbox (``python -m``).

It loads one verified artifact from ``/model`` through the same restricted loader the
registry uses (the scan policy's allow-list enforced in ``find_class``), says ``ready``,
then answers ``predict`` frames on the socket it inherited (``--fd``) until the gateway
closes it.  It has no network, no workspace, no secrets and bounded resources (see
:mod:`bastion.serving.sandbox`); it trusts nothing it receives beyond the frame format.

Example (what the gateway runs, inside bwrap)::

    python -I -m bastion.serving.worker --fd 3 --model /model/model.joblib --globals '[]'
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from bastion.serving.wire import HEADER_SIZE, decode, encode, frame_length


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < n:
        got = sock.recv(n - len(chunks))
        if not got:
            return None
        chunks += got
    return bytes(chunks)


def recv_frame(sock: socket.socket) -> dict[str, Any] | None:
    """The next message, or ``None`` when the peer closed the socket."""
    header = _recv_exact(sock, HEADER_SIZE)
    if header is None:
        return None
    body = _recv_exact(sock, frame_length(header))
    return None if body is None else decode(body)


def _stages(model: Any) -> tuple[Any | None, Any]:
    """A scikit-learn ``Pipeline`` as (its transforms, its final estimator), so that a batch
    is transformed once for both ``predict`` and ``predict_proba`` (what ``Pipeline`` does
    for each of them, twice); any other model as (None, itself).  Only a plain
    ``Pipeline``: a subclass may decide otherwise (its own ``predict``), and is asked whole."""
    from sklearn.pipeline import Pipeline

    if type(model) is Pipeline and len(model.steps) > 1:
        return model[:-1], model[-1]
    return None, model


def _predict(stages: tuple[Any | None, Any], msg: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    transforms, final = stages
    features = pd.DataFrame(msg["rows"], columns=msg["columns"])
    if transforms is not None:
        features = transforms.transform(features)
    labels = final.predict(features).tolist()
    scores = final.predict_proba(features).tolist() if hasattr(final, "predict_proba") else None
    return {"type": "result", "id": msg["id"], "labels": labels, "scores": scores}


def _load(path: Path, extra_globals: list[str]) -> Any:
    from bastion.model_security.scanning.policy import ScanPolicy
    from bastion.model_security.scanning.restricted import restricted_joblib_load

    return restricted_joblib_load(path, ScanPolicy(extra_globals=frozenset(extra_globals)))


def serve(sock: socket.socket, model: Any) -> int:
    classes = getattr(model, "classes_", None)
    sock.sendall(encode({
        "type": "ready",
        "pid": os.getpid(),
        "classes": classes.tolist() if classes is not None else None,
    }))
    stages = _stages(model)
    while True:
        msg = recv_frame(sock)
        if msg is None:
            return 0
        try:
            reply = _predict(stages, msg)
        except Exception as e:  # the model's failure is an answer, not the worker's end
            reply = {"type": "error", "id": msg.get("id"), "message": f"{type(e).__name__}: {e}"}
        sock.sendall(encode(reply))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bastion.serving.worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--globals", default="[]")
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    try:
        model = _load(args.model, list(json.loads(args.globals)))
    except Exception as e:
        sock.sendall(encode({"type": "failed", "message": f"{type(e).__name__}: {e}"[:2000]}))
        return 2
    gc.collect()
    gc.freeze()  # the model and its libraries live as long as the worker: out of GC scans
    return serve(sock, model)


if __name__ == "__main__":
    sys.exit(main())
