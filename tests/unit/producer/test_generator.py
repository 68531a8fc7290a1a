"""The synthetic generator against the formats and behaviour of the real Kaggle data."""

from __future__ import annotations

import calendar
import hashlib
import io
import re
from datetime import date, datetime

import pandas as pd
import pytest

from producer.generator import COLUMNS, describe, generate, unix_time
from schemas.source import CATEGORIES

# Original rows of credit_card_transactions.csv (Kaggle, priyamchoksi), copied from
# ../shared/data/credit_card_transactions_head5000.csv (rows 0, 1, 5, 15, 19, 53, 148,
# 2449: quoted merchant and job, 12/19/11-digit cards, 4-digit zips, empty
# merch_zipcode, float artefacts, a fraud), and of fraudTest.csv (kartik2112, first
# and last row of ../shared/data/fraudTest_head2145.csv, 2020 dates, no merch_zipcode).
REAL_HEADER = (
    "Unnamed: 0,trans_date_trans_time,cc_num,merchant,category,amt,first,last,gender,street,"
    "city,state,zip,lat,long,city_pop,job,dob,trans_num,unix_time,merch_lat,merch_long,"
    "is_fraud,merch_zipcode"
)
REAL_ROWS = """\
0,2019-01-01 00:00:18,2703186189652095,"fraud_Rippin, Kub and Mann",misc_net,4.97,Jennifer,Banks,F,561 Perry Cove,Moravian Falls,NC,28654,36.0788,-81.1781,3495,"Psychologist, counselling",1988-03-09,0b242abb623afc578575680df30655b9,1325376018,36.011293,-82.048315,0,28705.0
1,2019-01-01 00:00:44,630423337322,"fraud_Heller, Gutmann and Zieme",grocery_pos,107.23,Stephanie,Gill,F,43039 Riley Greens Suite 393,Orient,WA,99160,48.8878,-118.2105,149,Special educational needs teacher,1978-06-21,1f76529f8574734946361c461b024d99,1325376044,49.159047,-118.186462,0,
5,2019-01-01 00:04:08,4767265376804500,"fraud_Stroman, Hudson and Erdman",gas_transport,94.63,Jennifer,Conner,F,4655 David Island,Dublin,PA,18917,40.375,-75.2045,2158,Transport planner,1961-06-19,189a841a0a8ba03058526bcfe566aab5,1325376248,40.653382,-76.15266700000001,0,17972.0
15,2019-01-01 00:09:20,6011999606625827,fraud_Schmidt and Sons,shopping_net,3.26,Ronald,Carson,M,870 Rocha Drive,Harrington Park,NJ,7640,40.9918,-73.98,4664,"Radiographer, diagnostic",1965-06-30,baae0b096835c975857eea7e28dde3dc,1325376560,41.831174,-74.335559,0,12446.0
19,2019-01-01 00:12:34,4956828990005111019,"fraud_Schultz, Simonis and Little",grocery_pos,44.71,Kenneth,Robinson,M,269 Sanchez Rapids,Elizabeth,NJ,7208,40.6747,-74.2239,124967,Operational researcher,1980-12-21,09eff9c806365e2a6be12c1bbab3d70e,1325376754,40.079588,-74.84808699999999,0,8016.0
53,2019-01-01 00:39:43,60495593109,fraud_Volkman PLC,food_dining,122.86,Randall,Dillon,M,4440 George Mills Suite 591,Dallas,TX,75210,32.7699,-96.743,1263321,Television camera operator,1942-11-24,7d68e49b63d845b808108fcd41c15877,1325378383,32.282224,-97.46183,0,76033.0
148,2019-01-01 01:46:40,38199021865320,fraud_Boyer PLC,misc_pos,32.82,Jesse,Roberts,M,8415 Vaughn Squares Apt. 788,Acworth,NH,3601,43.196000000000005,-72.3001,477,Naval architect,1988-04-15,a05deff7a60c8b5ef65f780ef5c09743,1325382400,42.348367,-72.68946700000001,0,1053.0
2449,2019-01-02 01:06:37,4613314721966,fraud_Rutherford-Mertz,grocery_pos,281.06,Jason,Murphy,M,542 Steve Curve Suite 011,Collettsville,NC,28611,35.9946,-81.7266,885,Soil scientist,1988-09-15,e8a81877ae9a0a7f883e15cb39dc4022,1325466397,36.430124,-81.17948299999999,1,28644.0
"""  # noqa: E501
REAL_TEST_ROWS = """\
,trans_date_trans_time,cc_num,merchant,category,amt,first,last,gender,street,city,state,zip,lat,long,city_pop,job,dob,trans_num,unix_time,merch_lat,merch_long,is_fraud
0,2020-06-21 12:14:25,2291163933867244,fraud_Kirlin and Sons,personal_care,2.86,Jeff,Elliott,M,351 Darlene Green,Columbia,SC,29209,33.9659,-80.9355,333497,Mechanical engineer,1968-03-19,2da90c7d74bd46a0caf3777415b3ebd3,1371816865,33.986391,-81.200714,0
2144,2020-06-22 01:06:34,4482427013979020,fraud_Parisian and Sons,gas_transport,55.89,Leslie,Ford,F,4938 Hatfield Course,Henderson,WV,25106,38.8265,-82.1364,642,Building services engineer,1946-08-30,dbb75bffededf552dc3a2b0c3e2682b5,1371863194,38.698652,-81.89870400000001,0
"""  # noqa: E501

# One pattern per column, written from the real rows (float round-trip artefacts included).
_COORD = r"-?\d{1,3}\.\d{1,15}"
FORMATS = {
    "Unnamed: 0": r"\d+",
    "trans_date_trans_time": r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d",
    "cc_num": r"[1-9]\d{10,18}",
    "merchant": r"fraud_[A-Z][A-Za-z' ,-]+",
    "category": "|".join(CATEGORIES),
    "amt": r"\d+\.\d{1,2}",
    "first": r"[A-Z][A-Za-z' -]*",
    "last": r"[A-Z][A-Za-z' -]*",
    "gender": r"[FM]",
    "street": r"\d{3,5} [A-Z][A-Za-z0-9 .']+",
    "city": r"[A-Z][A-Za-z .'-]+",
    "state": r"[A-Z]{2}",
    "zip": r"[1-9]\d{2,4}",
    "lat": _COORD,
    "long": _COORD,
    "city_pop": r"[1-9]\d*",
    "job": r"[A-Z][^\n]*",
    "dob": r"\d{4}-\d\d-\d\d",
    "trans_num": r"[0-9a-f]{32}",
    "unix_time": r"\d{10}",
    "merch_lat": _COORD,
    "merch_long": _COORD,
    "is_fraud": r"[01]",
    "merch_zipcode": r"(|[1-9]\d{2,4}\.0)",
}
# Generated values are written cleanly: at most as many decimals as the source had.
CLEAN_DECIMALS = {"lat": 4, "long": 4, "merch_lat": 6, "merch_long": 6}

MEDIUM = {"customers": 200, "start": date(2019, 1, 1), "end": date(2019, 5, 31), "seed": 7}


def read_text(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def real_frame() -> pd.DataFrame:
    return read_text(REAL_HEADER + "\n" + REAL_ROWS)


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("gen") / "transactions.csv"
    calls: list[int] = []
    summary = generate(path, progress=calls.append, **MEDIUM)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return summary, frame, calls


@pytest.fixture(scope="module")
def medium_typed(medium) -> pd.DataFrame:
    _, frame, _ = medium
    typed = frame.copy()
    typed["when"] = pd.to_datetime(typed["trans_date_trans_time"])
    typed["is_fraud"] = typed["is_fraud"].astype(int)
    typed["amt"] = typed["amt"].astype(float)
    return typed


def test_header_is_the_real_header(medium):
    summary, _, _ = medium
    with open(summary.path, encoding="utf-8") as f:
        assert f.readline().rstrip("\n") == REAL_HEADER
    assert ",".join(COLUMNS) == REAL_HEADER


@pytest.mark.parametrize("column", list(FORMATS))
def test_every_column_has_the_real_format(medium, column):
    _, frame, _ = medium
    pattern = re.compile(FORMATS[column])
    real_bad = [v for v in real_frame()[column] if not pattern.fullmatch(v)]
    assert not real_bad, f"the pattern does not describe the real data: {real_bad}"
    bad = frame.loc[~frame[column].str.fullmatch(FORMATS[column]), column]
    assert bad.empty, f"{column}: {bad.head().tolist()}"
    if column in CLEAN_DECIMALS:
        decimals = frame[column].str.split(".").str[1].str.len()
        assert decimals.max() <= CLEAN_DECIMALS[column]


def test_value_shares_look_like_the_real_file(medium):
    _, frame, _ = medium
    cards = frame.drop_duplicates("cc_num")["cc_num"].str.len()
    assert 0.35 <= (cards == 16).mean() <= 0.65  # real: ~50% 16 digits, the rest 11-19
    assert cards.nunique() >= 5
    assert 0.08 <= (frame["merch_zipcode"] == "").mean() <= 0.25  # real slice: 15.7%
    assert set(frame["category"]) == set(CATEGORIES)
    assert frame["merchant"].nunique() >= 600  # a pool of 50 per category


def test_rows_are_indexed_and_in_time_order(medium):
    _, frame, _ = medium
    assert frame["Unnamed: 0"].astype(int).tolist() == list(range(len(frame)))
    stamps = frame["trans_date_trans_time"]
    assert (stamps.to_numpy()[1:] >= stamps.to_numpy()[:-1]).all()
    assert stamps.iloc[0] >= "2019-01-01" and stamps.iloc[-1] < "2019-06-01"


def test_trans_num_is_unique(medium):
    _, frame, _ = medium
    assert frame["trans_num"].is_unique


def test_summary_and_progress_match_the_file(medium):
    summary, frame, calls = medium
    assert summary.rows == len(frame)
    assert summary.frauds == int((frame["is_fraud"] == "1").sum())
    # Customers with a rate of 0 and no fraud in the window never show up, as in the real
    # train file (983 cards of 1,000 customers).
    assert summary.cards == frame["cc_num"].nunique()
    assert 0.85 * MEDIUM["customers"] <= summary.cards <= MEDIUM["customers"]
    assert calls == sorted(calls) and calls[-1] == summary.rows
    assert not summary.path.with_name(summary.path.name + ".part").exists()


def test_same_arguments_give_the_same_bytes(tmp_path):
    args = {"customers": 30, "start": date(2019, 11, 25), "end": date(2019, 12, 8)}
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    generate(a, seed=3, **args)
    generate(b, seed=3, **args)
    generate(c, seed=4, **args)
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b, c)]
    assert digest[0] == digest[1] != digest[2]


@pytest.mark.parametrize("text", [REAL_ROWS, REAL_TEST_ROWS.split("\n", 1)[1]], ids=["2019", "2020"])
def test_unix_time_rule_matches_real_rows(text):
    header = REAL_HEADER if text is REAL_ROWS else REAL_TEST_ROWS.split("\n", 1)[0]
    frame = read_text(header + "\n" + text)
    for stamp, expected in zip(frame["trans_date_trans_time"], frame["unix_time"], strict=True):
        assert unix_time(datetime.fromisoformat(stamp)) == int(expected)


def test_unix_time_on_leap_day_maps_to_28_february():
    assert unix_time(datetime(2020, 2, 29, 10, 0, 0)) == calendar.timegm((2013, 2, 28, 10, 0, 0, 0, 0, 0))
    assert unix_time(datetime(2020, 3, 1, 0, 0, 1)) == calendar.timegm((2013, 3, 1, 0, 0, 1, 0, 0, 0))


def test_generated_unix_time_follows_the_rule(medium, tmp_path):
    _, frame, _ = medium
    leap = tmp_path / "leap.csv"
    generate(leap, customers=40, start=date(2020, 2, 27), end=date(2020, 3, 2))
    for rows in (frame.sample(2000, random_state=0), pd.read_csv(leap, dtype=str)):
        for stamp, value in zip(rows["trans_date_trans_time"], rows["unix_time"], strict=True):
            assert unix_time(datetime.fromisoformat(stamp)) == int(value)


def test_fraud_rate_is_plausible(medium_typed):
    stats = describe(medium_typed)
    # Real: 0.58% (train), 0.39% (test); the simulation gives ~0.5% whatever the window.
    assert 0.003 <= stats["fraud_rate"] <= 0.009


def test_fraud_happens_at_night_and_legit_mostly_by_day(medium_typed):
    stats = describe(medium_typed)
    assert stats["fraud_night_share"] >= 0.7  # real: 84.6%
    assert stats["legit_night_share"] < 0.35  # real: ~23%


def test_each_fraud_card_has_one_burst_within_48_hours(medium_typed):
    fraud = medium_typed[medium_typed["is_fraud"] == 1]
    assert fraud["cc_num"].nunique() >= 10
    for card, rows in fraud.groupby("cc_num"):
        assert rows["when"].max() - rows["when"].min() < pd.Timedelta(hours=48), card
        assert 1 <= len(rows) <= 16


def test_legit_activity_is_removed_on_fraud_days(medium_typed):
    frame = medium_typed.assign(day=medium_typed["when"].dt.date)
    fraud, legit = frame[frame["is_fraud"] == 1], frame[frame["is_fraud"] == 0]
    fraud_days = set(zip(fraud["cc_num"], fraud["day"], strict=True))
    assert not fraud_days & set(zip(legit["cc_num"], legit["day"], strict=True))


def test_fraud_amounts_are_bimodal_by_category(medium_typed):
    medians = describe(medium_typed)["median_fraud_amt_by_category"]
    for category in ("shopping_net", "misc_net", "shopping_pos", "grocery_pos"):
        if category in medians:
            assert medians[category] >= 200, category
    for category in ("gas_transport", "grocery_net", "personal_care", "health_fitness"):
        if category in medians:
            assert medians[category] <= 50, category


def test_one_draw_picks_category_and_half_day(medium_typed):
    legit = medium_typed[medium_typed["is_fraud"] == 0]
    morning = legit["when"].dt.hour < 12
    # As in the real data: these categories happen only before noon, those only after.
    assert morning[legit["category"].isin(["gas_transport", "grocery_net"])].all()
    assert not morning[legit["category"].isin(["home", "travel", "kids_pets"])].any()


def test_weekend_of_the_simulated_calendar_is_busier(medium_typed):
    # 2019-01-01 was simulated as Sunday 2012-01-01, 2019-01-02 as Monday.
    per_day = medium_typed["when"].dt.date.value_counts()
    assert per_day[date(2019, 1, 1)] > 1.4 * per_day[date(2019, 1, 2)]


def test_describe_on_real_rows():
    stats = describe(real_frame())
    assert stats["rows"] == 8 and stats["cards"] == 8
    assert stats["fraud_rate"] == pytest.approx(1 / 8)
    assert stats["fraud_night_share"] == 1.0
    assert stats["median_fraud_amt_by_category"] == {"grocery_pos": 281.06}
    assert stats["tx_per_active_card_day_median"] == 1.0
    assert set(stats) >= {
        "fraud_rate",
        "fraud_night_share",
        "legit_night_share",
        "median_fraud_amt_by_category",
        "tx_per_card_day_median",
    }


@pytest.mark.parametrize(
    "kwargs",
    [{"customers": 0}, {"start": date(2019, 2, 1), "end": date(2019, 1, 31)}],
    ids=["no-customers", "end-before-start"],
)
def test_bad_arguments_are_rejected(tmp_path, kwargs):
    with pytest.raises(ValueError):
        generate(tmp_path / "x.csv", **kwargs)


def test_an_interrupted_run_leaves_no_file(tmp_path):
    def stop(rows: int) -> None:
        raise KeyboardInterrupt

    target = tmp_path / "x.csv"
    with pytest.raises(KeyboardInterrupt):
        generate(target, customers=5, start=date(2019, 1, 30), end=date(2019, 2, 2), progress=stop)
    assert list(tmp_path.iterdir()) == []
