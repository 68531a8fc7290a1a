import csv
import io
import re
from pathlib import Path

import pytest

from producer.source import CsvSource, SourceError
from producer.validate import TransNumSet, validate


def read_all(path: Path):
    source = CsvSource(str(path))
    seen = TransNumSet()
    accepted, reasons = 0, {}
    for chunk in source.chunks():
        verdict = validate(chunk.batch, seen)
        accepted += sum(verdict.accepted.to_pylist())
        reasons |= {chunk.lines[i]: r for i, r in verdict.reasons.items()}
    return source, accepted, reasons


def test_both_kaggle_layouts_are_read_whole(kaggle_csv, fraudtest_csv):
    for path, rows in ((kaggle_csv, 600), (fraudtest_csv, 200)):
        source, accepted, reasons = read_all(path)
        assert (accepted, reasons, source.malformed) == (rows, {}, [])


def write_variant(tmp_path: Path, src: Path, edit) -> Path:
    rows = list(csv.reader(src.open(newline="")))
    header, body = rows[0], rows[1:]
    edit(header, body)
    out = tmp_path / "variant.csv"
    with out.open("w", newline="") as f:
        csv.writer(f).writerows([header, *body])
    return out


def test_spreadsheet_damage_is_rejected_row_by_row_with_the_reason(tmp_path, kaggle_csv):
    def damage(header, body):
        col = {name: i for i, name in enumerate(header)}
        body[0][col["cc_num"]] = "2.29E+15"
        body[1][col["trans_date_trans_time"]] = "2/1/2019 1:06"
        body[2][col["is_fraud"]] = "1.0"
        body[3][col["amt"]] = "-5.00"
        body[4][col["category"]] = "groceries"
        body[5][col["trans_num"]] = body[6][col["trans_num"]]  # duplicate: the later row goes
        body[7][col["trans_date_trans_time"]] = "2019-02-30 10:00:00"

    _, accepted, reasons = read_all(write_variant(tmp_path, kaggle_csv, damage))
    assert accepted == 600 - 7
    assert "scientific notation" in reasons[2][0]
    assert "spreadsheet date format" in reasons[3][0]
    assert "written as a decimal" in reasons[4][0]
    assert "amt" in reasons[5][0]
    assert "category" in reasons[6][0]
    assert "duplicate trans_num" in reasons[8][0]
    assert "not a real date" in reasons[9][0]


def test_rows_with_the_wrong_number_of_fields_are_reported_with_their_line(tmp_path, kaggle_csv):
    lines = kaggle_csv.read_text().splitlines()
    lines[10] = lines[10] + ",surplus"
    lines[20] = "only,three,fields"
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(lines) + "\n")
    source, accepted, reasons = read_all(path)
    assert accepted == 598 and reasons == {}
    assert [(m.line, m.reason) for m in source.malformed] == [
        (11, "expected 24 fields, got 25"),
        (21, "expected 24 fields, got 3"),
    ]


def test_line_numbers_stay_right_across_blocks_with_ragged_lines(tmp_path, kaggle_csv, monkeypatch):
    import producer.source

    monkeypatch.setattr(producer.source, "BLOCK_BYTES", 8192)  # many small blocks
    lines = kaggle_csv.read_text().splitlines()
    ragged = {30, 31, 77, 400}  # file lines (1-based)
    for n in ragged:
        lines[n - 1] = "only,three,fields"
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(lines) + "\n")
    source = CsvSource(str(path))
    numbered = {}
    for chunk in source.chunks():
        numbered |= dict(zip(chunk.lines, chunk.batch.column("trans_num").to_pylist(), strict=True))
    assert {m.line for m in source.malformed} == ragged
    assert sorted(numbered) == [n for n in range(2, len(lines) + 1) if n not in ragged]
    for n, trans_num in numbered.items():
        assert re.search(r",([0-9a-f]{32}),", lines[n - 1]).group(1) == trans_num, f"line {n}"


def test_wrong_columns_fail_at_once_naming_them(tmp_path, kaggle_csv):
    path = write_variant(tmp_path, kaggle_csv, lambda h, b: h.__setitem__(h.index("amt"), "amount"))
    with pytest.raises(SourceError, match="missing columns: amt; unknown columns: amount"):
        next(CsvSource(str(path)).chunks())


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        next(CsvSource(str(tmp_path / "nope.csv")).chunks())


def test_s3_source_reads_the_same_bytes(kaggle_csv):
    class FakeS3:  # the boundary: boto3's get_object
        def get_object(self, Bucket, Key):
            data = kaggle_csv.read_bytes()
            return {"ContentLength": len(data), "Body": io.BytesIO(data)}

    source = CsvSource("s3://bucket/key.csv", s3_client=FakeS3())
    assert sum(c.batch.num_rows for c in source.chunks()) == 600


def test_trans_num_set_finds_repeats_within_and_across_blocks():
    seen = TransNumSet()
    ids = [f"{i:032x}" for i in range(10)]
    assert seen.add_new(ids[:4]) == []
    assert seen.add_new([ids[4], ids[1], ids[4]]) == [1, 2]
    assert seen.add_new(ids[5:]) == []
    assert seen.add_new(ids) == list(range(10))  # after the runs were merged
    assert len(seen) == 10


def test_the_validator_bounds_are_the_event_schema_bounds(kaggle_csv):
    """Values at a bound of schemas/fields.py pass and encode to a valid event; past it they are rejected."""
    import pyarrow as pa

    from producer.cards import CardProtector
    from producer.encode import encode_events
    from schemas.events import TransactionEvent
    from schemas.fields import BIRTH_YEARS, LATITUDE, LONGITUDE, MAX_AMOUNT, MAX_CITY_POP, MAX_TEXT

    edits = [  # (column, value at the bound, value past it)
        ("lat", f"{LATITUDE[1]}", f"{LATITUDE[1]}1"),
        ("long", f"{LONGITUDE[0]}", f"{LONGITUDE[0]}1"),
        ("merch_lat", f"{LATITUDE[0]}", f"{LATITUDE[0]}1"),
        ("merch_long", f"{LONGITUDE[1]}", f"{LONGITUDE[1]}1"),
        ("amt", f"{MAX_AMOUNT:.2f}", f"{MAX_AMOUNT + 0.01:.2f}"),
        ("city_pop", str(MAX_CITY_POP), str(MAX_CITY_POP + 1)),
        ("dob", f"{BIRTH_YEARS[0]}-01-01", f"{BIRTH_YEARS[0] - 1}-12-31"),
        ("merchant", "m" * MAX_TEXT, "m" * (MAX_TEXT + 1)),
        ("city", "c" * MAX_TEXT, "c" * (MAX_TEXT + 1)),
    ]
    batch = next(CsvSource(str(kaggle_csv)).chunks()).batch.slice(0, 2 * len(edits))
    columns = {name: batch.column(name).to_pylist() for name in batch.schema.names}
    for k, (column, at_bound, past_it) in enumerate(edits):
        columns[column][2 * k], columns[column][2 * k + 1] = at_bound, past_it
    edited = pa.RecordBatch.from_pydict(columns)
    verdict = validate(edited, TransNumSet())
    assert sorted(verdict.reasons) == [2 * k + 1 for k in range(len(edits))]
    for k, (column, _, _) in enumerate(edits):
        assert column.split("_")[-1] in verdict.reasons[2 * k + 1][0], verdict.reasons[2 * k + 1]
    block = encode_events(edited.filter(verdict.accepted), list(range(len(edits))), CardProtector(b"k" * 16))
    assert len(block.events) == len(edits)
    for raw in block.events:
        TransactionEvent.model_validate_json(raw)
