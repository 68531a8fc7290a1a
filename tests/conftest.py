import urllib.error
import urllib.request
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def kaggle_csv() -> Path:
    """600 real rows, priyamchoksi layout (index column + merch_zipcode), 5 fraud."""
    return FIXTURES / "kaggle_rows2301_2900.csv"


@pytest.fixture
def fraudtest_csv() -> Path:
    """200 real rows, kartik2112 fraudTest layout (no merch_zipcode)."""
    return FIXTURES / "fraudtest_head200.csv"


def http_get(url: str) -> tuple[int, str]:
    """(status, body) of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
