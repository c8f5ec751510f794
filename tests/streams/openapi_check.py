"""Validate API answers against the shipped OpenAPI description (``streams/openapi.json``, as served)."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from streams.api import openapi_document

BASE = "urn:driftline:openapi"


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def response_validator(path: str, status: str = "200", document: dict[str, Any] | None = None) -> Draft202012Validator:
    """A validator for the JSON answer of ``GET path`` with ``status``, resolving the document's own references."""
    doc = document or openapi_document()
    assert "application/json" in doc["paths"][path]["get"]["responses"][status]["content"], (path, status)
    registry = Registry().with_resource(BASE, Resource.from_contents(doc, default_specification=DRAFT202012))
    pointer = "/".join(
        _escape(p) for p in ("paths", path, "get", "responses", status, "content", "application/json", "schema")
    )
    return Draft202012Validator({"$ref": f"{BASE}#/{pointer}"}, registry=registry, format_checker=FormatChecker())


def check(path: str, answer: Any, status: str = "200", document: dict[str, Any] | None = None) -> None:
    """Raise unless ``answer`` fits the description of ``GET path`` answering ``status``."""
    response_validator(path, status, document).validate(answer)


def check_component(name: str, instance: Any) -> None:
    """Raise unless ``instance`` fits the document's schema ``components/schemas/<name>``."""
    doc = openapi_document()
    registry = Registry().with_resource(BASE, Resource.from_contents(doc, default_specification=DRAFT202012))
    Draft202012Validator(
        {"$ref": f"{BASE}#/components/schemas/{name}"}, registry=registry, format_checker=FormatChecker()
    ).validate(instance)
