"""A fast decoder for every event model, derived from the model itself: msgspec on the hot path.

Validating a message with pydantic costs a few microseconds per event; msgspec
decodes and checks the same JSON several times faster. The msgspec type is built
from the pydantic model's fields (names, order, defaults, bounds, patterns), so the
shape is still defined once, in :mod:`schemas.events`.

The fast decoder accepts a subset of what the model accepts, with the same values.
Types, bounds, lengths and literals are msgspec's, per message; the string patterns
are checked a column at a time over the batch with RE2 (pyarrow), whose syntax and
``$`` (end of text only) are those of pydantic's Rust regex. An event time must be
exactly ``YYYY-MM-DDTHH:MM:SS``, the producer's form, and a real date. Whatever it
refuses is decoded again by the model, which accepts it or says why not, so a dead
letter keeps the model's reason, and the rare accepted-but-unusual message its
model's values.
"""

from __future__ import annotations

import re
import types
from collections import deque
from datetime import datetime
from itertools import repeat
from operator import attrgetter
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import msgspec
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import NaiveDatetime
from pydantic.fields import FieldInfo

from schemas.events import _Event

# The producer's event time; anything else is left to the model.
EVENT_TIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$"


# From this many messages, the patterns are checked a column at a time (pyarrow); below, one by one (re).
COLUMN_WISE_FROM = 64


def _end_of_text(pattern: str) -> str:
    if not pattern.endswith("$") or pattern.endswith(r"\$"):
        raise UnsupportedField(f"a pattern not anchored at its end: {pattern}")
    return pattern[:-1] + r"\Z"


class UnsupportedField(TypeError):
    """A field this decoder cannot check exactly as the model does: better no fast path than a looser one."""


def _meta(metadata: list[Any]) -> dict[str, Any]:
    """msgspec.Meta arguments from pydantic field metadata (bounds, lengths; a pattern as ``pattern``,
    which the decoder checks over the batch, not msgspec)."""
    meta: dict[str, Any] = {}
    for m in metadata:
        if isinstance(m, annotated_types.Ge):
            meta["ge"] = m.ge
        elif isinstance(m, annotated_types.Le):
            meta["le"] = m.le
        elif isinstance(m, annotated_types.Gt):
            meta["gt"] = m.gt
        elif isinstance(m, annotated_types.Lt):
            meta["lt"] = m.lt
        elif isinstance(m, FieldInfo):
            meta.update(_meta(m.metadata))
        elif type(m).__name__ == "StringConstraints":
            if m.strip_whitespace or m.to_upper or m.to_lower or m.min_length is not None or m.ascii_only:
                raise UnsupportedField(f"string constraints {m}")
            if m.max_length is not None:
                meta["max_length"] = m.max_length
            if m.pattern is not None:
                meta["pattern"] = str(m.pattern)
        elif type(m).__name__ == "AllowInfNan":
            if m.allow_inf_nan:
                raise UnsupportedField("allow_inf_nan=True")  # msgspec refuses what overflows JSON numbers
        else:
            raise UnsupportedField(f"field metadata {m!r}")
    return meta


def _type(annotation: Any, metadata: list[Any]) -> tuple[Any, str, str | None]:
    """(msgspec type, kind, pattern) of a model field: kind "time" for an event time (checked as
    a date), "optional" prefixed when None is allowed; the pattern its strings must match."""
    if annotation is NaiveDatetime:
        if metadata:
            raise UnsupportedField("constraints on an event time")
        return str, "time", EVENT_TIME_PATTERN
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *extra = get_args(annotation)
        return _type(inner, [*extra, *metadata])
    if origin in (Union, types.UnionType):
        args = get_args(annotation)
        if len(args) != 2 or type(None) not in args or metadata:
            raise UnsupportedField(f"union {annotation}")
        inner_type, kind, pattern = _type(next(a for a in args if a is not type(None)), [])
        return inner_type | None, f"optional {kind}", pattern
    if origin is list:
        (item,) = get_args(annotation)
        item_type, kind, pattern = _type(item, [])
        if kind or pattern or metadata:
            raise UnsupportedField(f"list {annotation}")
        return list[item_type], "", None  # type: ignore[valid-type]
    if origin is Literal:
        if metadata or not all(isinstance(a, str) for a in get_args(annotation)):
            raise UnsupportedField(f"literal {annotation}")
        return annotation, "", None
    if annotation in (str, int, float, bool):
        meta = _meta(metadata)
        pattern = meta.pop("pattern", None)
        return (Annotated[annotation, msgspec.Meta(**meta)] if meta else annotation), "", pattern
    raise UnsupportedField(f"type {annotation}")


class FastDecoder:
    """Decodes one model's JSON with msgspec into a struct with the model's field names, order and values.

    :meth:`decode_many` decodes a batch; what it refuses, :meth:`decode_or_model` hands to the model.
    """

    def __init__(self, model: type[_Event]):
        self.model = model
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        self.times: list[str] = []  # event times, checked as dates and set as datetime
        self.patterns: dict[str, str] = {}  # field -> the pattern its value must match (when not None)
        for name, info in model.model_fields.items():
            kind_type, kind, pattern = _type(info.annotation, list(info.metadata))
            if kind.endswith("time"):
                self.times.append(name)
            if pattern is not None:
                self.patterns[name] = pattern
            if info.is_required():
                fields.append((name, kind_type))
            else:
                fields.append((name, kind_type, info.default))
        # The same patterns for Python's re, for small batches: ``$`` would also match before a final
        # newline there, so it becomes ``\Z`` (the end of the text, as in RE2 and pydantic's regex).
        self._regexes = {name: re.compile(_end_of_text(p)) for name, p in self.patterns.items()}
        self.struct = msgspec.defstruct(f"{model.__name__}Record", fields, forbid_unknown_fields=True, gc=False,
                                        kw_only=True)  # fmt: skip
        self._decoder = msgspec.json.Decoder(self.struct)

    def decode_many(self, raws: list[bytes]) -> list[Any]:
        """The struct of each of ``raws``, or None where the fast path is unsure (the model decides)."""
        decode = self._decoder.decode
        try:
            records: list[Any] = list(map(decode, raws))  # the usual batch, all decoded: no Python per message
            decoded = records
        except (msgspec.MsgspecError, ValueError):
            records = []
            for raw in raws:
                try:
                    records.append(decode(raw))
                except (msgspec.MsgspecError, ValueError):
                    records.append(None)
            decoded = [r for r in records if r is not None]
        if not decoded:
            return records
        failed: set[int] = set()  # positions in ``decoded``
        if len(decoded) < COLUMN_WISE_FROM:  # a call into pyarrow costs more than a few regex searches
            for name, regex in self._regexes.items():
                for i, r in enumerate(decoded):
                    if (value := getattr(r, name)) is not None and regex.search(value) is None:
                        failed.add(i)
        else:
            for name, pattern in self.patterns.items():
                values = pa.array(list(map(attrgetter(name), decoded)), pa.string())
                matched = pc.match_substring_regex(values, pattern)
                if not pc.all(pc.or_kleene(matched, values.is_null())).as_py():
                    failed.update(i for i, ok in enumerate(matched.to_pylist()) if ok is False)
        fromisoformat = datetime.fromisoformat
        for name in self.times:
            try:  # the usual batch: every time given and a real date, parsed in one pass
                parsed = list(map(fromisoformat, map(attrgetter(name), decoded)))
            except (TypeError, ValueError):  # a missing or bad one: one by one, to know which
                for i, r in enumerate(decoded):
                    if (value := getattr(r, name)) is not None and i not in failed:
                        try:
                            setattr(r, name, fromisoformat(value))  # a real date, as the model has it
                        except ValueError:
                            failed.add(i)
            else:
                deque(map(setattr, decoded, repeat(name), parsed), maxlen=0)  # set in C; a failed record is dropped
        if not failed:
            return records
        bad = {id(decoded[i]) for i in failed}
        return [None if r is None or id(r) in bad else r for r in records]

    def from_model(self, event: _Event) -> Any:
        """The struct of an event the model decoded."""
        return self.struct(**event.model_dump())

    def decode_or_model(self, raw: bytes) -> Any:
        """The struct of ``raw``, by msgspec or else by the model; raises the model's error if invalid."""
        record = self.many_or_model([raw])[0]
        if isinstance(record, Exception):
            raise record
        return record

    def many_or_model(self, raws: list[bytes]) -> list[Any]:
        """The struct of each of ``raws``, or the model's error (an exception, returned) for an invalid one."""
        out: list[Any] = self.decode_many(raws)
        for i, record in enumerate(out):
            if record is None:
                try:
                    out[i] = self.from_model(self.model.model_validate_json(raws[i]))
                except Exception as exc:  # noqa: BLE001 - the model's reason is the dead letter's
                    out[i] = exc
        return out
