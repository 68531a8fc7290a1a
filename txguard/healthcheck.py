"""``python -m txguard.healthcheck``: the container image's health check (Dockerfile HEALTHCHECK).

Each consumer service serves ``/healthz`` on ``TXGUARD_METRICS_PORT`` plus its index in
:data:`~txguard.settings.SERVICE_NAMES` (persist +0, scorer +1, ...), so the check asks every
one of those ports on loopback: healthy when at least one service answers and none that
answers says otherwise (a container runs one service, or all of them under ``txguard run``).
It reads the variable itself rather than the whole Settings: a health check starts fast, and
fails only on the health of what runs.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

from txguard.settings import SERVICE_NAMES

PORT_ENV = "TXGUARD_METRICS_PORT"


def problems(base_port: int, timeout_s: float = 3.0) -> list[str]:
    """What is unhealthy (empty: healthy)."""
    answered, found = 0, []
    for offset, service in enumerate(SERVICE_NAMES):
        url = f"http://127.0.0.1:{base_port + offset}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s):
                answered += 1
        except urllib.error.HTTPError as exc:
            found.append(f"{service}: {url} answered {exc.code}")
        except (urllib.error.URLError, OSError):
            continue  # nothing listens there: that service does not run in this container
    if not answered and not found:
        found.append(f"no service answers /healthz on ports {base_port}-{base_port + len(SERVICE_NAMES) - 1}")
    return found


def main() -> int:
    base = os.environ.get(PORT_ENV, "")
    if not base.isdigit() or int(base) == 0:
        print(f"unhealthy: {PORT_ENV} is {base or 'not set'}: no service serves /healthz", file=sys.stderr)
        return 1
    found = problems(int(base))
    for problem in found:
        print(f"unhealthy: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
