"""The functions of template.yaml as the devstack runs them: code, handler, timeout, environment, events."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    timeout_seconds: float
    memory_mb: int
    environment: dict[str, str]
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The folder name (create_job, ws_message…): what the logs show."""
        return self.code_dir.name

    def events_of_type(self, event_type: str) -> dict[str, dict[str, Any]]:
        return {name: event.get("Properties", {}) for name, event in self.events.items() if event["Type"] == event_type}


def functions_from_template(
    template: dict[str, Any], root: Path, references: dict[str, str], overrides: dict[str, str]
) -> dict[str, FunctionSpec]:
    """Every AWS::Serverless::Function, with Globals applied.

    `references` gives the local value of a `Ref` (a table's name, a queue's URL, a parameter);
    `overrides` replaces environment variables outright (e.g. WEBSOCKET_ENDPOINT, DATABASE_URL).
    """
    defaults = template.get("Globals", {}).get("Function", {})
    functions: dict[str, FunctionSpec] = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = {**defaults, **resource.get("Properties", {})}
        variables = {
            **defaults.get("Environment", {}).get("Variables", {}),
            **resource.get("Properties", {}).get("Environment", {}).get("Variables", {}),
        }
        environment = {name: resolve(value, references) for name, value in variables.items()}
        environment.update(overrides)
        environment = {name: value for name, value in environment.items() if value}  # blank means unset
        environment["AWS_LAMBDA_FUNCTION_NAME"] = logical_id
        environment["AWS_LAMBDA_FUNCTION_TIMEOUT"] = str(properties.get("Timeout", 3))
        functions[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_dir=(root / properties["CodeUri"]).resolve(),
            handler=properties["Handler"],
            timeout_seconds=float(properties.get("Timeout", 3)),
            memory_mb=int(properties.get("MemorySize", 128)),
            environment=environment,
            events=resource.get("Properties", {}).get("Events", {}),
        )
    return functions


def resolve(value: Any, references: dict[str, str]) -> str:
    """The local value of a template value: a literal, a Ref, or a Sub of Refs (unknown names → "")."""
    if isinstance(value, str | int | float | bool):
        return str(value)
    if isinstance(value, dict) and "Ref" in value:
        return references.get(value["Ref"], "")
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return _SUB_VARIABLE.sub(lambda match: references.get(match.group(1), ""), value["Fn::Sub"])
    return ""
