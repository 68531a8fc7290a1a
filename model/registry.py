"""The model store: trained ensembles and the online detector's checkpoints.

A trained ensemble is saved with its metadata (version, features, training data,
library versions) beside it, so what scores the stream can always say which model
it is and what it was trained on. The online detector keeps learning from the
stream; its checkpoints record the model version they belong to and are restored
only into that model. Files only: no clients, no environment.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib

from model.ensemble import Ensemble
from model.features import FEATURE_NAMES

log = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
METADATA_FILE = "model.json"


def write_joblib(obj: Any, path: Path) -> Path:
    """``joblib.dump`` to a temporary file renamed over ``path``: a crash never leaves half a file."""
    tmp = path.with_suffix(".tmp")
    joblib.dump(obj, tmp)
    os.replace(tmp, path)
    return path


def read_joblib(path: Path) -> Any:
    return joblib.load(path)


def save(model: Ensemble, directory: Path) -> Path:
    """Save a trained ensemble and its metadata (``model.metadata``, with its version)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_joblib(model, directory / MODEL_FILE)
    (directory / METADATA_FILE).write_text(json.dumps(model.metadata, indent=2))
    return directory


def load(directory: Path) -> Ensemble:
    """The ensemble saved in ``directory``; refuses one trained on other features."""
    path = directory / MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(f"no trained model at {path}: run `txguard train` first")
    model = read_joblib(path)
    expected = model.metadata.get("features")
    if expected is not None and tuple(expected) != FEATURE_NAMES:
        raise ValueError(f"model at {path} was trained on other features: retrain it")
    return model


class OnlineCheckpoint:
    """What the model learns from the stream, saved as it goes by: the online detector
    and the alert budget's recent score distribution."""

    def __init__(self, path: Path):
        self.path = path

    def save(self, model: Ensemble) -> None:
        """Atomically write ``model``'s online detector and budget, tagged with the model's version."""
        state = {
            "model_version": model.version,
            "online": model.online,
            "budget": model.budget,
            "saved_at": datetime.now(UTC).isoformat(),
        }
        write_joblib(state, self.path)

    def restore(self, model: Ensemble) -> bool:
        """Continue ``model``'s online detector from the checkpoint, if it belongs to this model."""
        if not self.path.exists():
            return False
        saved = read_joblib(self.path)
        if saved.get("model_version") != model.version:
            log.info("online checkpoint %s is for model %s, not %s: starting from training state",
                     self.path, saved.get("model_version"), model.version)  # fmt: skip
            return False
        model.online = saved["online"]
        if saved.get("budget") is not None:
            model.budget = saved["budget"]
        log.info("online detector restored from %s (saved %s)", self.path, saved.get("saved_at"))
        return True


class ModelRegistry:
    """The models of one deployment, in one directory."""

    def __init__(self, directory: Path):
        self.directory = directory

    def save(self, model: Ensemble) -> Path:
        return save(model, self.directory)

    def load(self) -> Ensemble:
        return load(self.directory)

    def online_checkpoint(self, namespace: str = "") -> OnlineCheckpoint:
        """Where the scorers of ``namespace`` keep their online detector."""
        return OnlineCheckpoint(self.directory / f"online.{namespace or 'default'}.joblib")
