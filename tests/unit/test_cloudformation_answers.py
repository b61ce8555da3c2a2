"""What a custom resource's answer looks like to CloudFormation, whatever the reason it carries."""

from __future__ import annotations

import json

from crosslist.cloudformation import (
    MAX_ANSWER_BYTES,
    CustomResourceAnswer,
    CustomResourceRequest,
    ExplainedFailure,
    RequestType,
    answer_custom_resource,
    failure_reason,
)
from tests.conftest import REPO


def sample() -> CustomResourceRequest:
    request = CustomResourceRequest.from_event(json.loads((REPO / "events" / "migrate.json").read_text()))
    assert request is not None
    return request


def test_a_reason_too_long_for_cloudformation_is_cut_to_fit() -> None:
    request = sample()
    reason = 'é"\\' * 5000  # characters JSON escapes take several bytes each
    body = CustomResourceAnswer("FAILED", "crosslist-database-schema", reason).body(request)

    assert len(body) <= MAX_ANSWER_BYTES
    answer = json.loads(body)
    assert answer["Reason"].endswith(" [...]")
    assert reason.startswith(answer["Reason"].removesuffix(" [...]"))
    assert answer["RequestId"] == request.request_id


def test_only_cloudformation_requests_are_answered() -> None:
    assert CustomResourceRequest.from_event({}) is None  # a run by hand
    assert CustomResourceRequest.from_event({"RequestType": "Create"}) is None  # no URL to answer
    assert sample().request_type == "Update"


def test_an_explained_failure_is_the_reason_as_it_is_anything_else_says_what_it_was() -> None:
    assert failure_reason(ExplainedFailure("the database is\nahead")) == "the database is | ahead"
    assert failure_reason(KeyError("Data")) == "KeyError: 'Data'"


def test_an_answer_that_cannot_be_sent_is_reported_not_raised() -> None:
    request = sample()
    not_http = CustomResourceRequest(
        request.request_type, "file:///etc/passwd", request.stack_id, request.request_id, request.logical_resource_id
    )
    answer = answer_custom_resource(not_http, lambda: {"Revision": "0001"}, physical_resource_id="schema")
    assert answer.status == "SUCCESS"
    assert answer.physical_resource_id == "schema"  # a Create gets the id given; an Update keeps its own


def test_a_rollback_is_an_update_back_to_an_older_version_of_the_same_function() -> None:
    function = "arn:aws:lambda:us-east-1:123456789012:function:crosslist-MigrationFunction-Q2h7s8KkLm3N"
    replaced = "arn:aws:lambda:us-east-1:123456789012:function:crosslist-MigrationFunction-Zz9y8x7w6v5U"

    def update(new: str, old: str, request_type: RequestType = "Update") -> CustomResourceRequest:
        request = sample()
        return CustomResourceRequest(
            request_type,
            request.response_url,
            request.stack_id,
            request.request_id,
            request.logical_resource_id,
            resource_properties={"Version": new},
            old_resource_properties={"Version": old},
        )

    assert update(f"{function}:6", f"{function}:7").goes_back_to_an_older_version("Version")
    assert not update(f"{function}:8", f"{function}:7").goes_back_to_an_older_version("Version")  # a deploy
    assert not update(f"{function}:10", f"{function}:9").goes_back_to_an_older_version("Version")  # numbers, not text
    assert not update(f"{replaced}:1", f"{function}:7").goes_back_to_an_older_version("Version")  # a new function
    assert not update(f"{function}:6", f"{function}:7", "Create").goes_back_to_an_older_version("Version")
    assert not update("", "").goes_back_to_an_older_version("Version")
