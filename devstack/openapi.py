"""Generate the HTTP API's OpenAPI document from the handlers' typed routes (docs/openapi.json).

`python -m devstack.openapi` writes it; a test fails when the committed file is out of date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from devstack.lambdas import load_module
from devstack.stack import REPO
from devstack.template import load_template

OUTPUT = REPO / "docs" / "openapi.json"


def http_functions(root: Path = REPO) -> list[Path]:
    """The code folders of the functions behind the HTTP API, as template.yaml wires them."""
    resources = load_template(root / "template.yaml")["Resources"]
    folders = {
        root / resource["Properties"]["CodeUri"]
        for resource in resources.values()
        if resource["Type"] == "AWS::Serverless::Function"
        and any(e["Type"] == "HttpApi" for e in resource["Properties"].get("Events", {}).values())
    }
    return sorted(folder.resolve() for folder in folders)


def openapi_document(root: Path = REPO) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for folder in http_functions(root):
        schema = json.loads(
            load_module(folder).app.get_openapi_json_schema(
                title="crosslist HTTP API",
                version="1",
                description="Products and marketplace jobs. Every route needs `Authorization: Bearer <JWT>`.",
            )
        )
        if not document:
            document = schema
            continue
        document["paths"].update(schema["paths"])
        document.setdefault("components", {}).setdefault("schemas", {}).update(
            schema.get("components", {}).get("schemas", {})
        )
    document["paths"] = dict(sorted(document["paths"].items()))
    document.get("components", {})["schemas"] = dict(sorted(document.get("components", {}).get("schemas", {}).items()))
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def main() -> int:
    OUTPUT.write_text(render(openapi_document()))
    print(f"wrote {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
