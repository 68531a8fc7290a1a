from schemas.__main__ import JSON_DIR, json_schemas
from schemas.events import TransactionEvent


def test_committed_json_schemas_match_the_models():
    for filename, text in json_schemas().items():
        assert (JSON_DIR / filename).read_text() == text, f"run `python -m schemas` to refresh {filename}"


def test_every_transaction_field_documents_its_purpose():
    assert all(field.description for field in TransactionEvent.model_fields.values())
