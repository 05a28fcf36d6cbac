"""Write or check openapi/openapi.json, the OpenAPI document generated from the code."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from backend import create_app
from backend.config import Settings

PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def render() -> str:
    """The document as committed: sorted keys, two-space indent, UTF-8 Chinese kept readable."""
    app = create_app(Settings(database_url="postgresql+psycopg://unused@localhost/unused"))
    with app.app_context():
        spec = app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    return json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> None:
    if argv[:1] == ["write"]:
        PATH.parent.mkdir(exist_ok=True)
        PATH.write_text(render(), encoding="utf-8")
        print(f"wrote {PATH}")
    elif argv[:1] == ["check"]:
        if not PATH.exists() or PATH.read_text(encoding="utf-8") != render():
            sys.exit(f"{PATH} is stale: run `make openapi`")
    else:
        sys.exit("usage: python -m backend.openapi_doc write|check")


if __name__ == "__main__":
    main(sys.argv[1:])
