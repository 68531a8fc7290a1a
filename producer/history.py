"""The history for batch training: the valid rows of a file as a frame."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from producer.cards import CardProtector
from producer.order import TIME_COLUMN, UNTIMED, sort_keys
from producer.source import CsvSource
from producer.validate import TransNumSet, validate

if TYPE_CHECKING:
    import pandas as pd


def load_history(source: CsvSource, protector: CardProtector, until: datetime | None = None) -> pd.DataFrame:
    """Valid rows before ``until`` as a pandas frame for batch training (tokenised, with is_fraud).

    The whole file is read, whatever its order (a shuffled copy holds rows before ``until``
    to its end); rows from ``until`` on are dropped before the costly steps.
    """
    import pandas as pd

    frames = []
    seen = TransNumSet()
    for chunk in source.chunks():
        batch = chunk.batch
        if until is not None:
            # An unreadable time stays: validation rejects it.
            keys = sort_keys(batch.column(TIME_COLUMN))
            batch = batch.filter(pa.array((keys < _ms(until)) | (keys == UNTIMED)))
        good = batch.filter(validate(batch, seen).accepted)
        c = {name: good.column(name) for name in good.schema.names}
        frame = pd.DataFrame({
            "card_token": protector.protect_many(c["cc_num"])[0].to_pylist(),
            "event_time": pd.to_datetime(c["trans_date_trans_time"].to_pylist()),
            "amt": pc.cast(c["amt"], pa.float64()).to_numpy(),
            "category": c["category"].to_pylist(),
            "birth_year": pc.cast(pc.utf8_slice_codeunits(c["dob"], 0, 4), pa.int64()).to_numpy(),
            "city_pop": pc.cast(c["city_pop"], pa.int64()).to_numpy(),
            "is_fraud": pc.equal(c["is_fraud"], "1").to_numpy(zero_copy_only=False),
        })  # fmt: skip
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _ms(when: datetime) -> int:
    """``when`` (naive: the file's clock, as the event times are read) in epoch ms."""
    return int(pa.scalar(when, pa.timestamp("ms")).cast(pa.int64()).as_py())
