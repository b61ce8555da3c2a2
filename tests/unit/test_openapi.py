"""docs/openapi.json is what the handlers' typed routes generate: the contract cannot drift."""

from __future__ import annotations

import json

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
    create_job = document["paths"]["/jobs"]["post"]
    schema_ref = create_job["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref.endswith("/CreateJobRequest")
    marketplace = document["components"]["schemas"]["CreateJobRequest"]["properties"]["marketplace"]
    assert marketplace["enum"] == ["vinted", "ebay", "etsy"]
