"""Baseline (a) of ``bench/serving.py``: a bare FastAPI + uvicorn endpoint calling
``model.predict`` in process on each request (no auth, no validation, no logging).

A plain ``def`` route (FastAPI runs it in its thread pool, as its docs advise for
blocking code), one uvicorn process, access log off, the same h11 parser Bastion uses.

    python bench/_serving_bare.py --model model.joblib --port 8701
"""

from __future__ import annotations

import argparse
from typing import Any

import joblib
import pandas as pd
import uvicorn
from fastapi import FastAPI


def app_for(model: Any) -> FastAPI:
    app = FastAPI()

    @app.post("/predict")
    def predict(body: dict[str, Any]) -> dict[str, Any]:
        rows = body["rows"] if "rows" in body else [body["row"]]
        labels = model.predict(pd.DataFrame(rows)).tolist()
        return {"predictions": [{"label": label} for label in labels]}

    return app


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    model = joblib.load(args.model)  # our own freshly trained model, not untrusted input
    uvicorn.run(app_for(model), host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False, http="h11")


if __name__ == "__main__":
    main()
