"""Every event that crosses Kafka, defined once.

Each field says why it is carried: downstream events hold only what features,
analytics and alert triage need. Cardholder names, street and job never leave the
producer; the card number leaves only as a keyed token and a masked form.
"""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, NaiveDatetime, StringConstraints

from schemas.source import CATEGORIES

TransNum = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
CardToken = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
# First 6 and last 4 digits: what an analyst needs to recognise a card, never the PAN.
CardMasked = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}\*{1,9}[0-9]{4}$")]
# PostgreSQL text cannot hold NUL; reject it at the boundary instead of failing a batch.
ShortText = Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00]*$")]
Amount = Annotated[float, Field(ge=0, le=1_000_000, allow_inf_nan=False)]
Score = Annotated[float, Field(allow_inf_nan=False)]
# The dataset's clock is local time without an offset; an offset would be dropped silently.
EventTime = NaiveDatetime
Category = Literal[CATEGORIES]  # type: ignore[valid-type]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


class _Event(BaseModel):
    # Strict: a value is accepted only in the JSON type PostgreSQL will store it as
    # (no "4.0" for an integer, no epoch number for a time), so a message that
    # passes validation can never fail a database batch.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


class TransactionEvent(_Event):
    """One card transaction, as published to the ``transactions`` topic."""

    trans_num: TransNum = Field(description="Unique transaction id; the idempotency key of every sink.")
    event_time: EventTime = Field(description="When the transaction happened (the event clock).")
    card_token: CardToken = Field(description="Keyed HMAC of the card number: Kafka key, per-card state key.")
    card_masked: CardMasked = Field(description="First 6 and last 4 digits, for alert triage.")
    merchant: ShortText = Field(description="Merchant name, for triage and analytics.")
    category: Category = Field(description="Merchant category: per-category behaviour features.")
    amt: Amount = Field(description="Amount in USD: the strongest signal.")
    gender: Annotated[str, StringConstraints(pattern=r"^[FM]$")] = Field(description="Profile segment.")
    city: ShortText = Field(description="Cardholder home city, for analytics.")
    state: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = Field(description="Home state, analytics.")
    zip: Annotated[str, StringConstraints(pattern=r"^[0-9]{3,5}$")] = Field(description="Home zip.")
    lat: Latitude = Field(description="Home latitude: distance to merchant.")
    long: Longitude = Field(description="Home longitude: distance to merchant.")
    city_pop: Annotated[int, Field(ge=0, le=2**31 - 1)] = Field(description="Urban/rural profile segment.")
    birth_year: Annotated[int, Field(ge=1900, le=2100)] = Field(
        description="Age band feature; the full date of birth is not needed downstream."
    )
    merch_lat: Latitude = Field(description="Merchant latitude.")
    merch_long: Longitude = Field(description="Merchant longitude.")
    merch_zipcode: Annotated[str, StringConstraints(pattern=r"^[0-9]{3,5}$")] | None = Field(
        default=None, description="Merchant zip when known."
    )


class ScoreEvent(_Event):
    """The ensemble's verdict on one transaction (``scores`` topic, every event)."""

    trans_num: TransNum
    card_token: CardToken
    event_time: EventTime
    iforest_score: Score = Field(description="Isolation Forest anomaly score, higher = more anomalous.")
    online_score: Score = Field(description="Online river detector score, higher = more anomalous.")
    score: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = Field(description="Ensemble score in [0, 1].")
    flagged: bool
    reason: Annotated[str, StringConstraints(max_length=500, pattern=r"^[^\x00]*$")] = Field(
        description="Why the event looks unusual: the features furthest from the card's norm."
    )
    model_version: ShortText


class AlertEvent(_Event):
    """A flagged transaction, with what an analyst needs to triage it (``alerts`` topic)."""

    trans_num: TransNum
    card_token: CardToken
    card_masked: CardMasked
    event_time: EventTime
    amt: Amount
    category: Category
    merchant: ShortText
    score: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
    reason: Annotated[str, StringConstraints(max_length=500, pattern=r"^[^\x00]*$")]
    model_version: ShortText


class LabelEvent(_Event):
    """The delayed ground truth for one transaction (chargeback / analyst feedback)."""

    trans_num: TransNum
    card_token: CardToken
    event_time: EventTime
    is_fraud: bool


EVENT_MODELS: dict[str, type[_Event]] = {
    "transaction": TransactionEvent,
    "score": ScoreEvent,
    "alert": AlertEvent,
    "label": LabelEvent,
}
