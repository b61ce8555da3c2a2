"""docs/openapi.json is what the handlers' typed routes generate: the contract cannot drift."""

from __future__ import annotations

import json

from crosslist.marketplaces import ACTION_TYPES, MARKETPLACES
from devstack.openapi import OUTPUT, openapi_document, render
from devstack.template import load_template
from tests.conftest import REPO


def test_the_committed_openapi_document_is_up_to_date() -> None:
    assert OUTPUT.read_text() == render(openapi_document()), "run `make openapi` and commit docs/openapi.json"


def test_every_route_of_the_http_api_is_documented_with_its_body() -> None:
    document = json.loads(OUTPUT.read_text())
    template = load_template(REPO / "template.yaml")
    routes = {
        (event["Properties"]["Path"], event["Properties"]["Method"].lower())
        for resource in template["Resources"].values()
        for event in resource.get("Properties", {}).get("Events", {}).values()
        if event["Type"] == "HttpApi"
    }
    documented = {(path, method) for path, operations in document["paths"].items() for method in operations}
    assert documented == routes
    create_job = document["paths"]["/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert create_job["discriminator"]["propertyName"] == "marketplace"
    schemas = document["components"]["schemas"]
    actions = {
        marketplace: set(schemas[ref.rsplit("/", 1)[1]]["properties"]["action"]["enum"])
        for marketplace, ref in create_job["discriminator"]["mapping"].items()
    }
    assert actions == {
        marketplace: {action.code for action in ACTION_TYPES if action.marketplace == marketplace}
        for marketplace in MARKETPLACES
    }


def test_every_answer_is_documented_with_its_status_and_body() -> None:
    """Each operation declares its success and the refusals every route can answer, each an Error."""
    document = json.loads(OUTPUT.read_text())
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert {"400", "422"} <= statuses, (method, path)
            assert ("401" in statuses) != (operation.get("security") == []), (method, path)
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ApiError"}, (method, path, status)
