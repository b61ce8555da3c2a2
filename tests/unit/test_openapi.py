"""docs/openapi.json is what the handlers' typed routes generate: the contract cannot drift."""

from __future__ import annotations

import json

from devstack.openapi import OUTPUT, openapi_document, render


def test_the_committed_openapi_document_is_up_to_date() -> None:
    assert OUTPUT.read_text() == render(openapi_document()), "run `make openapi` and commit docs/openapi.json"


def test_every_route_of_the_http_api_is_documented_with_its_body() -> None:
    document = json.loads(OUTPUT.read_text())
    assert set(document["paths"]) == {"/jobs", "/jobs/{job_id}", "/products", "/products/{product_id}"}
    create_job = document["paths"]["/jobs"]["post"]
    schema_ref = create_job["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref.endswith("/CreateJobRequest")
    marketplace = document["components"]["schemas"]["CreateJobRequest"]["properties"]["marketplace"]
    assert marketplace["enum"] == ["vinted", "ebay", "etsy"]
