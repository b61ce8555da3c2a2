"""Load a CloudFormation/SAM template into plain Python data.

CloudFormation's YAML short forms (``!Ref X``, ``!GetAtt A.B``, ``!Sub "..."``,
``!If [...]``...) are turned into the long JSON form CloudFormation itself uses
(``{"Ref": "X"}``, ``{"Fn::GetAtt": ["A", "B"]}``, ``{"Fn::Sub": "..."}``...), so
code reading the result sees one shape whichever form the template was written in,
and can resolve intrinsics later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["TemplateError", "load_template"]


class TemplateError(ValueError):
    """The file is not a template this module can read."""


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that accepts CloudFormation tags and refuses duplicate keys."""


# CloudFormation reads unquoted dates (e.g. Version: 2012-10-17) as strings, not datetimes.
_CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _CfnLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    # CloudFormation rejects duplicate keys; PyYAML would silently keep the last one.
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise TemplateError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
        result[key] = loader.construct_object(value_node, deep=True)
    return result


def _construct_value(loader: _CfnLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return _construct_mapping(loader, node)
    raise TemplateError(f"unexpected YAML node {node!r}")  # pragma: no cover - PyYAML has only these three


def _construct_tag(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value = _construct_value(loader, node)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # "!GetAtt Resource.Attr.With.Dots" splits on the first dot only.
        resource, sep, attribute = value.partition(".")
        if not sep:
            line = node.start_mark.line + 1
            raise TemplateError(f"!GetAtt {value!r} at line {line} needs Resource.Attribute")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: str | Path) -> dict[str, Any]:
    """Parse the YAML (or JSON) template at ``path``; short-form tags become long-form dicts."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.load(text, Loader=_CfnLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise TemplateError(f"{path}: a template is a mapping, got {type(data).__name__}")
    return data
