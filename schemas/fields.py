"""Field bounds and patterns, defined once: the event models and the vectorised
validator of input rows both take them from here."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, NaiveDatetime, StringConstraints

from schemas.source import CATEGORIES

MAX_TEXT = 200  # merchant, city, ...: analytics text, never a document
MAX_REASON = 500
MAX_AMOUNT = 1_000_000.0
MAX_CITY_POP = 2**31 - 1  # a PostgreSQL integer
BIRTH_YEARS = (1900, 2100)
LATITUDE = (-90.0, 90.0)
LONGITUDE = (-180.0, 180.0)

TRANS_NUM_PATTERN = r"^[0-9a-f]{32}$"
HEX_ID_PATTERN = r"^[0-9a-f]{32}$"  # ids made by hashing what they identify (drift events)
CARD_TOKEN_PATTERN = r"^[0-9a-f]{32}$"
PAN_PATTERN = r"^[0-9]{11,19}$"
STATE_PATTERN = r"^[A-Z]{2}$"
ZIP_PATTERN = r"^[0-9]{3,5}$"
GENDER_PATTERN = r"^[FM]$"
# What an analyst needs to recognise a card, never the PAN: at least 6 digits hidden,
# so the first 6 and last 4 of a 16-19 digit number, the last 4 only of an 11-15 digit one.
CARD_MASKED_PATTERN = r"^([0-9]{6}\*{6,9}|\*{7,11})[0-9]{4}$"
# PostgreSQL text cannot hold NUL; reject it at the boundary instead of failing a batch.
NO_NUL_PATTERN = r"^[^\x00]*$"

TransNum = Annotated[str, StringConstraints(pattern=TRANS_NUM_PATTERN)]
CardToken = Annotated[str, StringConstraints(pattern=CARD_TOKEN_PATTERN)]
HexId = Annotated[str, StringConstraints(pattern=HEX_ID_PATTERN)]
CardMasked = Annotated[str, StringConstraints(pattern=CARD_MASKED_PATTERN)]
ShortText = Annotated[str, StringConstraints(max_length=MAX_TEXT, pattern=NO_NUL_PATTERN)]
Reason = Annotated[str, StringConstraints(max_length=MAX_REASON, pattern=NO_NUL_PATTERN)]
Amount = Annotated[float, Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False)]
Score = Annotated[float, Field(allow_inf_nan=False)]
UnitScore = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
# The dataset's clock is local time without an offset; an offset would be dropped silently.
EventTime = NaiveDatetime
Category = Literal[CATEGORIES]  # type: ignore[valid-type]
Latitude = Annotated[float, Field(ge=LATITUDE[0], le=LATITUDE[1], allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=LONGITUDE[0], le=LONGITUDE[1], allow_inf_nan=False)]
State = Annotated[str, StringConstraints(pattern=STATE_PATTERN)]
Zip = Annotated[str, StringConstraints(pattern=ZIP_PATTERN)]
Gender = Annotated[str, StringConstraints(pattern=GENDER_PATTERN)]
CityPop = Annotated[int, Field(ge=0, le=MAX_CITY_POP)]
BirthYear = Annotated[int, Field(ge=BIRTH_YEARS[0], le=BIRTH_YEARS[1])]
