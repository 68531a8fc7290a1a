"""The model registry: versioned ensembles, the current and shadow pointers, online checkpoints.

Every trained ensemble is registered as a version with its metadata (version,
features, training window and data hash, metrics per detector on held-out later
events, a calibration of the score to a fraud probability, library versions)
beside it, so what scores the stream can always say which model it is and what it
was trained on. ``CURRENT`` names the version that scores and alerts, ``SHADOW`` a
candidate scored alongside it; scorers poll both and swap without a restart. The online detector keeps learning from the
stream; its checkpoints record the model version they belong to and are restored
only into that model. A local directory or an ``s3://`` prefix; clients come from the caller.
"""

from __future__ import annotations

import copy
import fcntl
import io
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import joblib
import numpy as np

from model.calibration import probability
from model.ensemble import Ensemble
from model.features import FEATURE_NAMES
from model.online_classifier import OnlineClassifier

log = logging.getLogger(__name__)
T = TypeVar("T")

MODEL_FILE = "model.joblib"
METADATA_FILE = "model.json"
VERSIONS = "versions"
CURRENT, SHADOW = "CURRENT", "SHADOW"
LEARNED, LEARNED_POINTER, LEARNER_STATE = "learned", "VERSION", "learner.joblib"


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
    return _checked(read_joblib(path), str(path))


def _checked(model: Ensemble, path: str) -> Ensemble:
    expected = model.metadata.get("features")
    if expected is not None and tuple(expected) != FEATURE_NAMES:
        raise ValueError(f"model at {path} was trained on other features: retrain it")
    return model


class OnlineCheckpoint:
    """What the model learns from the stream, saved as it goes by: the online detector
    and the alert budget's recent score distribution; ``key`` in a registry's store.

    Several scorers of one consumer group share the checkpoint, each learning from its
    own partitions. A detector that can ``rebase`` (the default z-score detector) is
    merged: each save adds what this process learned since its last restore or save to
    what the checkpoint holds, and the process goes on from the sum, so the checkpoint
    is the state of all the events learned by all of them. A detector that cannot is
    written by one scorer only (``writer``, the owner of partition 0), and the others
    take its state at every save. The budget is a distribution estimate: the last
    writer's stands.
    """

    def __init__(self, store: RegistryStore, key: str):
        self.store, self.key = store, key
        # The detector as of the last restore or save, and its model's version: what this
        # process learned since is the difference.
        self.base: Any = None
        self.base_version: str | None = None
        self.base_write: str | None = None  # the checkpoint write the base came from, if any

    def save(self, model: Ensemble, writer: bool = True) -> None:
        """Merge ``model``'s online detector into the checkpoint and continue from the merge."""
        if not hasattr(model.online, "rebase") and not writer:
            self.restore(model)
            return
        state = self.store.update_object(self.key, lambda saved: self._merged(model, saved))
        model.online = state["online"]
        self._set_base(model, state["write"])

    def _merged(self, model: Ensemble, saved: Any) -> dict[str, Any]:
        online = model.online
        ours = self.base is not None and self.base_version == model.version
        # Nobody else wrote since this process's base: its own state is the sum, bit for bit.
        alone = saved is not None and saved.get("write") == self.base_write
        if saved is not None and saved.get("model_version") == model.version and hasattr(online, "rebase"):
            if ours and not alone:
                online = online.rebase(self.base, saved["online"])
            else:  # a model this process took up without the checkpoint (a promoted shadow): its state stands
                log.info("online checkpoint %s: replaced by this process's %s state", self.key, model.version)
        return {
            "model_version": model.version,
            "online": online,
            "budget": model.budget,
            "saved_at": datetime.now(UTC).isoformat(),
            "write": uuid.uuid4().hex,
        }

    def _set_base(self, model: Ensemble, write: str | None) -> None:
        self.base, self.base_version, self.base_write = copy.deepcopy(model.online), model.version, write

    def restore(self, model: Ensemble) -> bool:
        """Continue ``model``'s online detector from the checkpoint, if it belongs to this model."""
        write = self._restore(model)
        self._set_base(model, write)  # restored or not, what it learns from now on is this process's
        return write is not None

    def _restore(self, model: Ensemble) -> str | None:
        """The checkpoint write restored (``""`` for one saved before writes were named), or None."""
        if not self.store.exists(self.key):
            return None
        saved = self.store.read_object(self.key)
        if saved.get("model_version") != model.version:
            log.info("online checkpoint %s is for model %s, not %s: starting from training state",
                     self.key, saved.get("model_version"), model.version)  # fmt: skip
            return None
        model.online = saved["online"]
        if saved.get("budget") is not None:
            model.budget = saved["budget"]
            model.budget.forget_sources()  # the partitions it read belong to the process that saved it
        log.info("online detector restored from %s (saved %s)", self.key, saved.get("saved_at"))
        return str(saved.get("write", ""))


class RegistryStore(Protocol):
    """Where a registry keeps its files: a local directory here; an ``s3://`` prefix could be a second one.

    Keys are ``/``-separated paths relative to the registry's root.
    """

    def read_text(self, key: str) -> str | None: ...
    def write_text(self, key: str, text: str) -> None: ...  # atomic: readers see the old or the new text
    def read_object(self, key: str) -> Any: ...
    def write_object(self, key: str, obj: Any) -> None: ...  # atomic
    # Atomically replace the object at ``key`` by ``update(the object, or None)``; returns the new object.
    def update_object(self, key: str, update: Callable[[Any], Any]) -> Any: ...
    def exists(self, key: str) -> bool: ...
    def claim(self, key: str) -> bool: ...  # create the folder ``key``; False if it exists already
    def children(self, key: str) -> list[str]: ...
    def move(self, src: str, dst: str) -> None: ...


class LocalStore:
    """A :class:`RegistryStore` in a local directory; every write is a rename over the old file."""

    def __init__(self, root: Path):
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key

    def read_text(self, key: str) -> str | None:
        try:
            return self._path(key).read_text()
        except FileNotFoundError:
            return None

    def write_text(self, key: str, text: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with open(tmp, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def read_object(self, key: str) -> Any:
        return read_joblib(self._path(key))

    def write_object(self, key: str, obj: Any) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_joblib(obj, path)

    def update_object(self, key: str, update: Callable[[Any], Any]) -> Any:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # An advisory lock beside the object: processes on this machine update it one at a time.
        with open(path.with_name(f".{path.name}.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            new = update(read_joblib(path) if path.exists() else None)
            write_joblib(new, path)
        return new

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def claim(self, key: str) -> bool:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir()
        except FileExistsError:
            return False
        return True

    def children(self, key: str) -> list[str]:
        path = self._path(key)
        return sorted(p.name for p in path.iterdir() if p.is_dir()) if path.is_dir() else []

    def move(self, src: str, dst: str) -> None:
        os.replace(self._path(src), self._path(dst))


class S3Store:
    """A :class:`RegistryStore` under an ``s3://bucket/prefix``.

    Every write is one PUT, which S3 makes visible whole: readers see the old object or
    the new one. A version folder is claimed with a conditional PUT (``If-None-Match``),
    so two trainers never take the same version. ``client`` is a boto3 S3 client.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = ""):
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")

    @classmethod
    def at(cls, client: Any, location: str) -> S3Store:
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"{location}: expected s3://bucket/prefix")
        return cls(client, bucket, prefix)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _get(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def _put(self, key: str, body: bytes, **conditions: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=body, **conditions)

    def read_text(self, key: str) -> str | None:
        body = self._get(key)
        return body.decode() if body is not None else None

    def write_text(self, key: str, text: str) -> None:
        self._put(key, text.encode())

    def read_object(self, key: str) -> Any:
        body = self._get(key)
        if body is None:
            raise FileNotFoundError(f"s3://{self.bucket}/{self._key(key)}")
        return joblib.load(io.BytesIO(body))

    def write_object(self, key: str, obj: Any) -> None:
        buffer = io.BytesIO()
        joblib.dump(obj, buffer)
        self._put(key, buffer.getvalue())

    def update_object(self, key: str, update: Callable[[Any], Any]) -> Any:
        # Compare-and-swap on the ETag: a concurrent writer makes the PUT fail, and it is redone.
        for _ in range(20):
            try:
                got = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
                current, condition = joblib.load(io.BytesIO(got["Body"].read())), {"IfMatch": got["ETag"]}
            except self.client.exceptions.NoSuchKey:
                current, condition = None, {"IfNoneMatch": "*"}
            new = update(current)
            buffer = io.BytesIO()
            joblib.dump(new, buffer)
            try:
                self._put(key, buffer.getvalue(), **condition)
            except self.client.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in (
                    "PreconditionFailed",
                    "412",
                    "ConditionalRequestConflict",
                ):
                    continue
                raise
            return new
        raise RuntimeError(f"s3://{self.bucket}/{self._key(key)}: too many concurrent updates")

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def claim(self, key: str) -> bool:
        try:
            self._put(f"{key}/.claimed", b"", IfNoneMatch="*")
        except self.client.exceptions.ClientError as exc:
            if self._lost_race(exc):
                return False
            raise
        return True

    @staticmethod
    def _lost_race(exc: Any) -> bool:
        """A conditional PUT refused: another writer got there first."""
        return exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412", "ConditionalRequestConflict")

    def children(self, key: str) -> list[str]:
        prefix = self._key(key).rstrip("/") + "/"
        names = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, Delimiter="/"
        ):
            names += [p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])]
        return sorted(names)

    def move(self, src: str, dst: str) -> None:
        self.client.copy_object(
            Bucket=self.bucket, Key=self._key(dst), CopySource={"Bucket": self.bucket, "Key": self._key(src)}
        )
        self.client.delete_object(Bucket=self.bucket, Key=self._key(src))


@dataclass(frozen=True)
class Pointers:
    """The versions the registry names: the one that scores, and the candidate scored alongside it."""

    current: str | None
    shadow: str | None


class ModelRegistry:
    """The versioned models of one deployment.

    Layout: ``versions/<version>/model.joblib`` + ``model.json``, and two pointer files,
    ``CURRENT`` (the version that scores and alerts) and ``SHADOW`` (a candidate scored
    alongside it, raising no alerts). A version's ``model.json`` is written last, so a
    version without it is incomplete and ignored. A legacy ``model.joblib`` at the top
    (no ``versions/``) is the current version until the first save moves it in.
    """

    def __init__(self, directory: Path | str, store: RegistryStore | None = None):
        self.location = str(directory)  # for messages: a directory or an s3:// prefix
        self.store: RegistryStore = store or LocalStore(Path(directory))

    @classmethod
    def at(cls, location: str | Path, s3_client: Callable[[], Any] | None = None) -> ModelRegistry:
        """The registry in a local directory, or under an ``s3://bucket/prefix`` (through ``s3_client()``)."""
        if str(location).startswith("s3://"):
            if s3_client is None:
                raise ValueError(f"{location}: an s3:// registry needs an S3 client")
            return cls(str(location), S3Store.at(s3_client(), str(location)))
        return cls(Path(location))

    # --- pointers ------------------------------------------------------------------------

    def _pointer(self, name: str) -> str | None:
        text = self.store.read_text(name)
        return text.strip() or None if text is not None else None

    def pointers(self) -> Pointers:
        """CURRENT and SHADOW as they are now (two tiny reads: cheap enough to poll)."""
        return Pointers(self._pointer(CURRENT), self._pointer(SHADOW))

    def current_version(self) -> str | None:
        current = self._pointer(CURRENT)
        if current is None and self._is_legacy():
            return str(self._legacy_metadata().get("version", "untrained"))
        return current

    def promote(self, version: str) -> None:
        """Make ``version`` the current one; it stops being the shadow if it was."""
        self._require(version)
        self.store.write_text(CURRENT, version + "\n")
        if self._pointer(SHADOW) == version:
            self.store.write_text(SHADOW, "")
        log.info("model %s promoted to current", version)

    def set_shadow(self, version: str | None) -> None:
        """Score ``version`` alongside the current one (None: no shadow)."""
        if version is not None:
            self._require(version)
            if version == self.current_version():
                raise ValueError(f"model {version} is the current one: it cannot also be the shadow")
        self.store.write_text(SHADOW, (version or "") + "\n")

    def _require(self, version: str) -> None:
        if not self.store.exists(f"{VERSIONS}/{version}/{METADATA_FILE}"):
            raise KeyError(f"no model version {version!r} in {self.location}")

    # --- versions ------------------------------------------------------------------------

    def save(self, model: Ensemble, *, promote: bool = True, shadow: bool = False) -> str:
        """Register ``model`` as a new version and return it.

        The first version becomes current whatever is asked; later ones become current
        (``promote``), the shadow (``shadow``), or neither. A version already taken gets
        a suffix (``-2``, ``-3``...), and the model's metadata says the one it got.
        """
        self._migrate_legacy()
        base = model.version
        version, n = base, 1
        while not self.store.claim(f"{VERSIONS}/{version}"):
            n += 1
            version = f"{base}-{n}"
        model.metadata["version"] = version
        self.store.write_object(f"{VERSIONS}/{version}/{MODEL_FILE}", model)
        self.store.write_text(f"{VERSIONS}/{version}/{METADATA_FILE}", json.dumps(model.metadata, indent=2))
        if self._pointer(CURRENT) is None or (promote and not shadow):
            self.promote(version)
        elif shadow:
            self.set_shadow(version)
        return version

    def load(self, version: str | None = None) -> Ensemble:
        """The model of ``version`` (default: the current one)."""
        if version is None:
            return self.load_current()
        self._require(version)
        return _checked(self.store.read_object(f"{VERSIONS}/{version}/{MODEL_FILE}"), f"{self.location}/{version}")

    def load_current(self) -> Ensemble:
        current = self._pointer(CURRENT)
        if current is not None:
            return self.load(current)
        if self._is_legacy():
            return _checked(self.store.read_object(MODEL_FILE), f"{self.location}/{MODEL_FILE}")
        raise FileNotFoundError(f"no trained model in {self.location}: run `txguard train` first")

    def load_shadow(self) -> Ensemble | None:
        shadow = self._pointer(SHADOW)
        return self.load(shadow) if shadow is not None else None

    def metadata(self, version: str) -> dict[str, Any]:
        """The metadata (``model.json``) of ``version``."""
        self._require(version)
        text = self.store.read_text(f"{VERSIONS}/{version}/{METADATA_FILE}")
        return json.loads(text) if text else {}

    def list(self) -> list[dict[str, Any]]:
        """Every complete version, oldest first, with its role and what it was trained on."""
        pointers = self.pointers()
        rows = []
        for version in self.store.children(VERSIONS):
            text = self.store.read_text(f"{VERSIONS}/{version}/{METADATA_FILE}")
            if text is None:
                continue  # still being written, or abandoned
            rows.append(_summary(version, json.loads(text), pointers))
        if not rows and self._is_legacy():
            meta = self._legacy_metadata()
            rows.append(_summary(str(meta.get("version", "untrained")), meta, Pointers(None, None), legacy=True))
        return sorted(rows, key=lambda r: (r["created_at"] or "", r["version"]))

    # --- the layout before versions ------------------------------------------------------

    def _is_legacy(self) -> bool:
        return self.store.exists(MODEL_FILE) and not self.store.children(VERSIONS)

    def _legacy_metadata(self) -> dict[str, Any]:
        text = self.store.read_text(METADATA_FILE)
        return json.loads(text) if text else {}

    def _migrate_legacy(self) -> None:
        """Move a pre-registry ``model.joblib`` into ``versions/`` as the current version."""
        if not self._is_legacy() or self._pointer(CURRENT) is not None:
            return
        version = str(self._legacy_metadata().get("version", "legacy"))
        if not self.store.claim(f"{VERSIONS}/{version}"):
            return
        self.store.move(MODEL_FILE, f"{VERSIONS}/{version}/{MODEL_FILE}")
        if self.store.exists(METADATA_FILE):
            self.store.move(METADATA_FILE, f"{VERSIONS}/{version}/{METADATA_FILE}")
        else:
            self.store.write_text(f"{VERSIONS}/{version}/{METADATA_FILE}", json.dumps({"version": version}))
        self.store.write_text(CURRENT, version + "\n")
        log.info("moved the model in %s into the registry as version %s", self.location, version)

    # --- online state --------------------------------------------------------------------

    def online_checkpoint(self, namespace: str = "") -> OnlineCheckpoint:
        """Where the scorers of ``namespace`` keep their online detector."""
        return OnlineCheckpoint(self.store, f"online.{namespace or 'default'}.joblib")

    # --- the online classifier: one learner writes, every scorer reads ----------------------

    @staticmethod
    def _learned(namespace: str, name: str) -> str:
        return f"{LEARNED}/{namespace or 'default'}/{name}"

    def publish_learned(self, snapshot: OnlineClassifier, namespace: str = "") -> None:
        """Publish the learner's snapshot: the model first, then the pointer scorers poll."""
        self.store.write_object(self._learned(namespace, MODEL_FILE), snapshot)
        self.store.write_text(self._learned(namespace, LEARNED_POINTER), snapshot.version + "\n")

    def learned_version(self, namespace: str = "") -> str | None:
        """The version of the latest published snapshot (a tiny read: cheap enough to poll)."""
        return self._pointer(self._learned(namespace, LEARNED_POINTER))

    def load_learned(self, namespace: str = "") -> OnlineClassifier | None:
        """The latest published snapshot, or None before the learner published one."""
        key = self._learned(namespace, MODEL_FILE)
        return self.store.read_object(key) if self.store.exists(key) else None

    def save_learner_state(self, state: Any, namespace: str = "") -> None:
        """The learner's own checkpoint (its classifier with the reference rows, its pending labels)."""
        self.store.write_object(self._learned(namespace, LEARNER_STATE), state)

    def load_learner_state(self, namespace: str = "") -> Any | None:
        key = self._learned(namespace, LEARNER_STATE)
        return self.store.read_object(key) if self.store.exists(key) else None


def _summary(version: str, meta: dict[str, Any], pointers: Pointers, legacy: bool = False) -> dict[str, Any]:
    """One version as ``model list`` shows it.

    ``metrics`` are the ensemble's on the held-out later events (``metrics_on``
    "held-out"); a version trained before those were recorded shows its in-sample
    figures ("in-sample"). ``calibration`` has the Brier scores and the fraud
    probability the calibration map gives an event at the alert threshold.
    """
    td = meta.get("training_data", {})
    role = "current" if legacy or version == pointers.current else "shadow" if version == pointers.shadow else "-"
    detectors = (meta.get("heldout") or {}).get("detectors") or {}
    in_sample = meta.get("training_quality") or {}
    calibration = meta.get("calibration") or {}
    threshold = meta.get("threshold")
    at_threshold = None
    if calibration.get("map") and threshold is not None:
        at_threshold = float(probability(calibration, np.array([threshold]))[0])
    return {
        "version": version,
        "role": role,
        "created_at": meta.get("trained_at"),
        "training_start": td.get("start"),
        "training_end": td.get("end"),
        # The cut-off it was trained before, when known (retrains), else its last event.
        "trained_until": td.get("until") or td.get("end"),
        "rows": td.get("rows"),
        "data_hash": td.get("data_hash"),
        "source": td.get("source"),
        "metrics": detectors.get("ensemble") or in_sample,
        "metrics_on": "held-out" if "ensemble" in detectors else "in-sample" if in_sample else None,
        "detectors": detectors,
        "calibration": {
            "brier": calibration.get("brier"),
            "brier_base_rate": calibration.get("brier_base_rate"),
            "probability_at_threshold": at_threshold,
        },
        "threshold": threshold,
    }


class Watcher(Generic[T]):
    """Tells a long-running scorer when something it polls changed, looking at most every ``poll_s``.

    ``look`` reads the current value (the registry's pointers, the learner's version).
    """

    def __init__(self, look: Callable[[], T], poll_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.look, self.poll_s, self.clock = look, poll_s, clock
        self.seen = look()
        self._checked_at = clock()

    def moved(self) -> T | None:
        """The value if it changed since the last look, else None (also when a look is not due)."""
        now = self.clock()
        if now - self._checked_at < self.poll_s:
            return None
        self._checked_at = now
        value = self.look()
        if value == self.seen:
            return None
        self.seen = value
        return value
