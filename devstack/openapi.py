"""Generate the HTTP API's OpenAPI document from the handlers' typed routes (docs/openapi.json).

`python -m devstack.openapi` writes it; a test fails when the committed file is out of date.
"""

from __future__ import annotations

import json
import re
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


DESCRIPTION = (
    "Products and marketplace jobs on Vinted, eBay and Etsy. Every route but the OAuth callback needs"
    " `Authorization: Bearer <JWT>`; bodies are JSON. Every refusal is an `ApiError`: `code` to act on, `message`"
    " to show."
)
BEARER = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


def openapi_document(root: Path = REPO) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for folder in http_functions(root):
        app = load_module(folder).app
        schema = json.loads(
            app.get_openapi_json_schema(title="crosslist HTTP API", version="1", description=DESCRIPTION)
        )
        for path, operations in schema["paths"].items():
            if app.is_public(re.sub(r"\{[^}]+\}", "x", path)):  # reached without a token
                for operation in operations.values():
                    operation["security"] = []
        if not document:
            document = schema
            continue
        document["paths"].update(schema["paths"])
        document.setdefault("components", {}).setdefault("schemas", {}).update(
            schema.get("components", {}).get("schemas", {})
        )
    document["paths"] = dict(sorted(document["paths"].items()))
    for operations in document["paths"].values():
        for operation in operations.values():
            # Powertools gives every success the return annotation's body; a 204 has none.
            operation["responses"].get("204", {}).pop("content", None)
    _drop_unreferenced_schemas(document)
    document.setdefault("components", {})["securitySchemes"] = {"bearer": BEARER}
    document["security"] = [{"bearer": []}]
    document.get("components", {})["schemas"] = dict(sorted(document.get("components", {}).get("schemas", {}).items()))
    return document


def _drop_unreferenced_schemas(document: dict[str, Any]) -> None:
    """Powertools adds its own validation-error schemas; every answer here is an ApiError instead."""
    schemas = document.get("components", {}).get("schemas", {})
    while True:
        text = json.dumps({**document, "components": {**document["components"], "schemas": {}}})
        text += json.dumps(schemas)
        unused = [name for name in schemas if f'"#/components/schemas/{name}"' not in text]
        if not unused:
            return
        for name in unused:
            del schemas[name]


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def main() -> int:
    OUTPUT.write_text(render(openapi_document()))
    print(f"wrote {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
