"""The part of Discord's OpenAPI description (v10) the fake Discord checks requests against:
every route (so an unknown one answers 404 as Discord does) and the request schemas of the
routes the fake serves. Committed as discord_openapi.json, cut from the full description with

    python -m tests.fakes.discord_spec /path/to/discord-openapi.json

(the full file is 1.2 MB; this keeps the 60 kB the fake needs; MIT licence, Discord Inc.)."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, by_relevance
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

RELEVANCE = by_relevance()
SUBSET = Path(__file__).with_name("discord_openapi.json")

# (path, method) whose request body the fake validates.
VALIDATED = (
    ("/applications/{application_id}/commands", "put"),
    ("/applications/{application_id}/guilds/{guild_id}/commands", "put"),
    ("/channels/{channel_id}/messages", "post"),
    ("/channels/{channel_id}/messages/{message_id}", "patch"),
    ("/users/@me/channels", "post"),
    ("/interactions/{interaction_id}/{interaction_token}/callback", "post"),
    ("/webhooks/{webhook_id}/{webhook_token}", "post"),
    ("/webhooks/{webhook_id}/{webhook_token}/messages/@original", "patch"),
    ("/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", "patch"),
)
METHODS = ("get", "put", "post", "patch", "delete")


def _refs(node: Any, found: set[str], schemas: dict[str, Any]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name not in found:
                found.add(name)
                _refs(schemas[name], found, schemas)
        for value in node.values():
            _refs(value, found, schemas)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found, schemas)


def cut(full: dict[str, Any]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, item in full["paths"].items():
        paths[path] = {m: {"parameters": item[m].get("parameters", [])} for m in METHODS if m in item}
    bodies: dict[str, Any] = {}
    for path, method in VALIDATED:
        operation = full["paths"][path][method]
        bodies[f"{method.upper()} {path}"] = operation["requestBody"]["content"]
    schemas = full["components"]["schemas"]
    names: set[str] = set()
    _refs(bodies, names, schemas)
    return {"paths": paths, "bodies": bodies, "components": {"schemas": {n: schemas[n] for n in sorted(names)}}}


@dataclass(frozen=True)
class Operation:
    path: str  # the spec's template, e.g. /channels/{channel_id}/messages
    method: str  # upper case
    params: dict[str, str]  # path parameters of this request
    query: frozenset[str]  # query parameters the route takes


@cache
def _spec() -> dict[str, Any]:
    spec = json.loads(SUBSET.read_text())
    # Discord takes a snowflake as a string or a number (discord.py sends attachment ids and
    # recipient ids as numbers); the description only names the string form.
    snowflake = spec["components"]["schemas"]["SnowflakeType"]
    spec["components"]["schemas"]["SnowflakeType"] = {"anyOf": [snowflake, {"type": "integer", "minimum": 0}]}
    return spec


def first_error(validator: Draft202012Validator, body: Any) -> tuple[str, str] | None:
    """Where a body breaks its schema and why, as Discord names a field. Within a oneOf (a
    component: button, select, ...) the branch of the component's own `type` is the one to blame."""
    errors = list(validator.iter_errors(body))
    if not errors:
        return None
    best = max(errors, key=RELEVANCE)  # not best_match: it would descend into every branch alike
    while best.context:
        branches: dict[Any, list[ValidationError]] = {}
        for error in best.context:
            branches.setdefault(error.relative_schema_path[0], []).append(error)
        fitting = [e for errors in branches.values() if not any(_wrong_kind(e) for e in errors) for e in errors]
        best = max(fitting or best.context, key=RELEVANCE)
    return ".".join(str(p) for p in best.absolute_path) or "_root", best.message


def _wrong_kind(error: ValidationError) -> bool:
    return list(error.relative_path) == ["type"] and error.validator in ("enum", "const")


@cache
def _routes() -> list[tuple[re.Pattern[str], str]]:
    routes = []
    for path in _spec()["paths"]:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
        routes.append((re.compile(f"^{pattern}$"), path))
    # Literal segments first: /messages/@original must not be taken for /messages/{message_id}.
    routes.sort(key=lambda route: route[1].count("{"))
    return routes


def match(method: str, path: str) -> Operation | None:
    """The spec's operation for this request, or None where Discord has no such route."""
    for pattern, template in _routes():
        found = pattern.match(path)
        if found is None:
            continue
        item = _spec()["paths"][template]
        if method.lower() not in item:
            return None
        query = frozenset(p["name"] for p in item[method.lower()]["parameters"] if p.get("in") == "query")
        return Operation(template, method.upper(), found.groupdict(), query)
    return None


@cache
def validator(method: str, path: str, content_type: str) -> Draft202012Validator | None:
    """The JSON-schema validator for a served route's body, None for a route without a body schema."""
    content = _spec()["bodies"].get(f"{method} {path}")
    if content is None:
        return None
    media = content.get(content_type) or content.get("application/json")
    resource = Resource.from_contents(_spec(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource("urn:discord", resource)
    return Draft202012Validator(_rebase(media["schema"]), registry=registry)


def _rebase(node: Any) -> Any:
    """Point local $refs at the registered spec, so a body schema can be used on its own."""
    if isinstance(node, dict):
        return {k: (f"urn:discord{v}" if k == "$ref" and v.startswith("#") else _rebase(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_rebase(v) for v in node]
    return node


def properties(method: str, path: str) -> frozenset[str] | None:
    """Top-level body fields the spec names for a served route (None: not checked)."""
    content = _spec()["bodies"].get(f"{method} {path}")
    if content is None:
        return None
    names: set[str] = set()
    _collect_properties(content.get("multipart/form-data") or content["application/json"], names)
    return frozenset(names)


def _collect_properties(node: Any, names: set[str]) -> None:
    if not isinstance(node, dict):
        return
    if "$ref" in node:
        _collect_properties(_spec()["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]], names)
    if "schema" in node:
        _collect_properties(node["schema"], names)
    names.update(node.get("properties", {}))
    for key in ("allOf", "anyOf", "oneOf"):
        for option in node.get(key, []):
            _collect_properties(option, names)


if __name__ == "__main__":
    source = json.loads(Path(sys.argv[1]).read_text())
    SUBSET.write_text(json.dumps(cut(source), indent=None, sort_keys=True, separators=(",", ":")) + "\n")
    print(f"wrote {SUBSET} ({SUBSET.stat().st_size} bytes)")
