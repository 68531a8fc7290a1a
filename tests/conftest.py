import urllib.error
import urllib.request
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
INTEGRATION = "tests/integration/"


def pytest_xdist_make_scheduler(config: pytest.Config, log):  # noqa: ANN001, ANN201 - pytest-xdist's hook
    """Under pytest-xdist (`make test -n 2`): every integration test on one worker, in order, on
    the one embedded stack it starts; the unit test modules spread over the workers meanwhile.
    (A scheduler, not --dist loadgroup: pytest 9.2 ignores the node ids that xdist 3.8 renames to
    group tests, pytest-dev/pytest-xdist#1386.)"""
    from xdist.scheduler import LoadScopeScheduling

    class StackScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return INTEGRATION if nodeid.startswith(INTEGRATION) else super()._split_scope(nodeid)

    return StackScheduling(config, log)


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
