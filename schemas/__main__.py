"""Write the JSON Schema of every event to schemas/json/ (``python -m schemas``).

Other teams' producers and consumers validate against these files; a test keeps
them equal to the pydantic models they are generated from.
"""

from __future__ import annotations

import json
from pathlib import Path

from schemas.events import EVENT_MODELS

JSON_DIR = Path(__file__).parent / "json"


def json_schemas() -> dict[str, str]:
    return {
        f"{name}.json": json.dumps(model.model_json_schema(), indent=2) + "\n" for name, model in EVENT_MODELS.items()
    }


if __name__ == "__main__":
    JSON_DIR.mkdir(exist_ok=True)
    for filename, text in json_schemas().items():
        (JSON_DIR / filename).write_text(text)
        print(JSON_DIR / filename)
