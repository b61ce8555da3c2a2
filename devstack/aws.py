"""Create the DynamoDB tables, SQS queues and KMS keys template.yaml declares, in moto (or any AWS endpoint).

Resources are named after their logical IDs (the template lets CloudFormation name them in AWS),
and only the properties these services need locally are carried over: keys, indexes, FIFO, redrive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.template import load_template


@dataclass
class Provisioned:
    tables: dict[str, str] = field(default_factory=dict)  # logical id -> table name
    queues: dict[str, str] = field(default_factory=dict)  # logical id -> queue URL
    queue_arns: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # logical id -> KMS key id (what !Ref gives)
    key_arns: dict[str, str] = field(default_factory=dict)


def provision(template_path: Path, dynamodb: Any, sqs: Any, kms: Any = None) -> Provisioned:
    """Tables and queues; KMS keys too when given a `kms` client."""
    resources: dict[str, dict[str, Any]] = load_template(template_path)["Resources"]
    provisioned = Provisioned()
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::DynamoDB::Table":
            provisioned.tables[logical_id] = _create_table(dynamodb, logical_id, resource.get("Properties", {}))
    # Dead-letter queues first: a queue's redrive policy names its DLQ's ARN.
    queues = {k: v for k, v in resources.items() if v["Type"] == "AWS::SQS::Queue"}
    for logical_id in sorted(queues, key=lambda k: "RedrivePolicy" in queues[k].get("Properties", {})):
        _create_queue(sqs, logical_id, queues[logical_id].get("Properties", {}), provisioned)
    for logical_id, resource in resources.items():
        if kms is not None and resource["Type"] == "AWS::KMS::Key":
            description = str(resource.get("Properties", {}).get("Description", logical_id))
            metadata = kms.create_key(Description=description)["KeyMetadata"]
            provisioned.keys[logical_id], provisioned.key_arns[logical_id] = metadata["KeyId"], metadata["Arn"]
    return provisioned


def _create_table(dynamodb: Any, name: str, properties: dict[str, Any]) -> str:
    arguments: dict[str, Any] = {
        "TableName": name,
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if "GlobalSecondaryIndexes" in properties:
        arguments["GlobalSecondaryIndexes"] = [
            {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
            for index in properties["GlobalSecondaryIndexes"]
        ]
    dynamodb.create_table(**arguments)
    ttl = properties.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
        )
    return name


def _create_queue(sqs: Any, logical_id: str, properties: dict[str, Any], provisioned: Provisioned) -> None:
    fifo = bool(properties.get("FifoQueue"))
    attributes: dict[str, str] = {}
    for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds"):
        if key in properties:
            attributes[key] = str(properties[key])
    if fifo:
        attributes["FifoQueue"] = "true"
        attributes["ContentBasedDeduplication"] = str(bool(properties.get("ContentBasedDeduplication"))).lower()
    redrive = properties.get("RedrivePolicy")
    if redrive:
        target = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": provisioned.queue_arns[target], "maxReceiveCount": int(redrive["maxReceiveCount"])}
        )
    name = f"{logical_id}.fifo" if fifo else logical_id
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    provisioned.queues[logical_id] = url
    provisioned.queue_arns[logical_id] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
