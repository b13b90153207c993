"""Helpers of the serving tests: a small signed scikit-learn model, and the hostile
worker fixture staged like an artifact (see ``hostile_worker.py``)."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from bastion.core.access.values import Actor
from bastion.model_security.values import ModelVersion
from bastion.serving.workers import WorkerSpec
from bastion.workspace import Bastion

HOSTILE = Path(__file__).with_name("hostile_worker.py")


@dataclass
class Toy:
    ws: Bastion
    admin: Actor
    version: ModelVersion
    model: Pipeline
    work: Path


def toy_model(seed: int = 0) -> Pipeline:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.random(300), "b": rng.random(300)})
    return Pipeline([("s", StandardScaler()), ("m", LogisticRegression())]).fit(x, x.a > x.b)


def hostile_spec(folder: Path) -> WorkerSpec:
    """The hostile fixture staged as the stager stages a model (read-only, 0444/0555)."""
    model = folder / "model"
    model.mkdir(parents=True)
    shutil.copy(HOSTILE, model / HOSTILE.name)
    os.chmod(model / HOSTILE.name, 0o444)
    os.chmod(model, 0o555)
    os.chmod(folder, 0o755)
    digest = hashlib.sha256((model / HOSTILE.name).read_bytes()).hexdigest()
    return WorkerSpec("hostile", model, HOSTILE.name, digest, ("attack", "arg"))


def hostile_program(fd: int) -> list[str]:
    import sys

    return [sys.executable, "-I", f"/model/{HOSTILE.name}", "--fd", str(fd)]
