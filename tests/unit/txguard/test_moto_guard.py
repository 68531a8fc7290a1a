"""The guard in front of the embedded moto: what a web browser sends for another site is refused."""

import pytest

from txguard.moto_guard import guarded


def _call(headers: dict[str, str]) -> str:
    def app(environ, start_response):
        start_response("200 OK", [])
        return [b"moto"]

    statuses = []
    environ = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    body = b"".join(guarded(app)(environ, lambda status, headers: statuses.append(status)))
    return f"{statuses[0][:3]} {body.decode()[:7]}"


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "127.0.0.1:15000"},  # boto3
        {"Host": "localhost:15000"},
        {"Host": "127.0.0.1:15000", "Origin": "http://127.0.0.1:15000"},  # moto's own dashboard
        {"Host": "127.0.0.1:40001"},  # through a local proxy or tunnel
        {"Host": "[::1]:15000"},
    ],
)
def test_the_local_clients_get_through(headers):
    assert _call(headers) == "200 moto"


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "127.0.0.1:15000", "Origin": "https://attacker.example"},  # a form POST, a no-cors fetch
        {"Host": "127.0.0.1:15000", "Origin": "null"},  # a sandboxed frame, a file:// page
        {"Host": "127.0.0.1:15000", "Origin": "http://127.0.0.1:8080"},  # another local web server
        {"Host": "rebound.attacker.example:15000"},  # DNS rebinding: same-origin for the browser
        {"Host": "127.0.0.1.attacker.example:15000"},
        {"Host": "localhost:15000", "Origin": "http://127.0.0.1:15000"},  # not the same origin
        {},
    ],
)
def test_web_pages_and_other_host_names_are_refused(headers):
    assert _call(headers) == "403 refused"
