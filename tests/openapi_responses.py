#!/usr/bin/python3
"""openapi_responses.py — every response the integration tests received, against
api-docs/openapi.yaml's response schemas.

    /usr/bin/python3 tests/openapi_responses.py RESPONSES.jsonl

RESPONSES.jsonl holds one {"method", "path", "status", "type", "body"} line per
response (tests/support.c it_record_response, under FITD_RESPONSE_LOG; an event
stream's line has "events" instead of a body). For each:

  - the operation is found by method and path template (literal segments win);
  - a documented status must document the response's media type;
  - an event stream's events must be named in the media type's x-fitd-events,
    each event's data valid against the schema it gives;
  - a JSON body must validate against that media type's schema (JSON Schema
    2020-12, as OpenAPI 3.1 uses), where every object schema with `properties`
    and no `additionalProperties` is taken as closed: a field the server sends and
    the document does not name is a failure, so the document cannot fall behind.

A problem+json body on a route or status the operation does not document (the
route-less 404, 405) is checked against components/schemas/Problem. Which
statuses each route returns is test_openapi --coverage's check, not this one.
Exits 0 when every response conforms, 1 naming each failing (operation, status,
schema location) once with a count and the first example, 2 on a usage error.
Needs Debian's python3-yaml and python3-jsonschema.
"""
import copy
import json
import re
import sys
import warnings

import jsonschema
import yaml

DOC = "api-docs/openapi.yaml"


def close_objects(node, doc):
    """Make every object schema with `properties` and no `additionalProperties`
    closed, in place. An allOf's parts each see only their own properties, so
    they stay open (a $ref among them becomes an open copy of its target) and
    the schema holding the allOf gets `unevaluatedProperties: false`, which sees
    the properties of every part."""
    if isinstance(node, dict):
        if "allOf" in node:
            node["allOf"] = [copy.deepcopy(deref(doc, part)) for part in node["allOf"]]
            node.setdefault("unevaluatedProperties", False)
        elif "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for key, value in node.items():
            if key != "allOf":
                close_objects(value, doc)
        for part in node.get("allOf", []):
            for value in part.values():
                close_objects(value, doc)
    elif isinstance(node, list):
        for item in node:
            close_objects(item, doc)


def operations(doc):
    """[(method, regex, literal segment count, operation)] for every path."""
    ops = []
    for template, item in doc["paths"].items():
        parts = template.strip("/").split("/")
        pattern = "/" + "/".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
        literal = sum(not p.startswith("{") for p in parts)
        for method, op in item.items():
            if method in ("get", "put", "post", "delete", "patch", "head", "options"):
                ops.append((method.upper(), re.compile(pattern + "$"), literal, template, op))
    return ops


def find_op(ops, method, path):
    best = None
    for m, rx, literal, template, op in ops:
        # HEAD is answered like GET where the document does not list it.
        if (m == method or (method == "HEAD" and m == "GET")) and rx.match(path):
            if best is None or literal > best[0] or (literal == best[0] and m == method):
                best = (literal, template, op)
    return (best[1], best[2]) if best else (None, None)


def deref(doc, node):
    while isinstance(node, dict) and "$ref" in node:
        target = doc
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


class Checker:
    """The document, closed, and the verdicts on the responses fed to check()."""

    def __init__(self, doc):
        self.doc = copy.deepcopy(doc)
        close_objects(self.doc["components"], doc)
        close_objects(self.doc["paths"], doc)
        self.ops = operations(self.doc)
        warnings.simplefilter("ignore", DeprecationWarning)  # RefResolver in newer jsonschema
        self.resolver = jsonschema.RefResolver(base_uri="", referrer=self.doc)
        self.validators = {}
        self.failures = {}  # (where, status, what) -> [count, example]
        self.checked = self.skipped = 0

    def validator(self, schema):
        key = id(schema)
        if key not in self.validators:
            self.validators[key] = jsonschema.Draft202012Validator(schema, resolver=self.resolver)
        return self.validators[key]

    def fail(self, where, status, what, example):
        entry = self.failures.setdefault((where, status, what), [0, example])
        entry[0] += 1

    def schema_for(self, rec, op, where, status, mtype):
        """The schema the record's body must match under operation op (None: no
        route matched); None when there is nothing (more) to check, after
        counting the record."""
        responses = op.get("responses", {}) if op else {}
        resp = deref(self.doc, responses.get(status)) if status in responses else None
        if resp is None:
            # Undocumented here: a problem body still has to be a Problem.
            if mtype == "application/problem+json" and rec.get("body") is not None:
                return {"$ref": "#/components/schemas/Problem"}
            self.skipped += 1
            return None
        content = resp.get("content")
        if not content:
            if rec.get("body") is not None:
                self.fail(where, status, f"a {mtype} body where none is documented", rec["path"])
            self.checked += 1
            return None
        if mtype not in content:
            self.fail(where, status, f"media type {mtype or '(none)'} not documented "
                      f"(documented: {', '.join(content)})", rec["path"])
            return None
        if "events" in rec:
            self.check_events(rec, where, status, content[mtype].get("x-fitd-events", {}))
            return None
        schema = content[mtype].get("schema")
        if schema is None or not mtype.endswith("json"):
            self.checked += 1
            return None
        if rec.get("body") is None:
            if rec["method"] != "HEAD":
                self.skipped += 1  # over 1 MiB
            return None
        return schema

    def check_events(self, rec, where, status, schemas):
        """An event stream: each event's name must be documented (x-fitd-events)
        and its data valid against that event's schema."""
        self.checked += 1
        for ev in rec["events"]:
            name = ev["event"]
            if name not in schemas:
                self.fail(where, status, f"event {name!r} not documented", rec["path"])
            elif ev.get("data_error"):
                self.fail(where, status, f"event {name!r} with data that is not JSON", rec["path"])
            else:
                self.validate(deref(self.doc, schemas[name]), ev.get("data"), where, status,
                              f"{rec['path']} event {name}")

    def validate(self, schema, body, where, status, example):
        for err in self.validator(schema).iter_errors(body):
            at = "/" + "/".join(str(p) for p in err.absolute_path)
            self.fail(where, status, f"{err.validator} failed at schema "
                      f"{'/'.join(str(p) for p in err.schema_path)}",
                      f"{example}, at {at}: {err.message[:200]}")

    def check(self, rec):
        method, path, status = rec["method"], rec["path"], str(rec["status"])
        mtype = rec.get("type", "").split(";")[0].strip().lower()
        template, op = find_op(self.ops, method, path)
        where = f"{method} {template or path}"
        if rec.get("body_error"):  # a JSON type, documented or not, on a body that is not JSON
            self.checked += 1
            self.fail(where, status, f"a {mtype} body that is not JSON", path)
            return
        schema = self.schema_for(rec, op, where, status, mtype)
        if schema is None:
            return
        self.checked += 1
        self.validate(schema, rec["body"], where, status, path)


# Responses that drifted from the document: the checker must fail each one.
DRIFTED = [
    ("an undocumented field", {"method": "GET", "path": "/healthz", "status": 200,
     "type": "application/json", "body": {"status": "ok", "surprise": 1}}),
    ("a wrong type", {"method": "GET", "path": "/healthz", "status": 200,
     "type": "application/json", "body": {"status": 1}}),
    ("an undocumented media type", {"method": "GET", "path": "/v1/jobs/job_x/metrics",
     "status": 200, "type": "text/plain", "body": None}),
    ("a JSON type on a body that is not JSON", {"method": "GET", "path": "/healthz",
     "status": 200, "type": "application/json", "body_error": True}),
    ("an undocumented event", {"method": "GET", "path": "/v1/jobs/job_x/events", "status": 200,
     "type": "text/event-stream", "events": [{"event": "surprise", "data": {}}]}),
    ("an event whose data is off", {"method": "GET", "path": "/v1/jobs/job_x/events",
     "status": 200, "type": "text/event-stream",
     "events": [{"event": "state", "data": {"status": "exploded", "error": None}}]}),
    ("a problem without its status", {"method": "GET", "path": "/no/such/route", "status": 404,
     "type": "application/problem+json", "body": {"type": "about:blank", "title": "x"}}),
]


def main(argv):
    if len(argv) != 2:
        print("usage: openapi_responses.py RESPONSES.jsonl", file=sys.stderr)
        return 2
    with open(DOC, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    for what, rec in DRIFTED:
        probe = Checker(doc)
        probe.check(rec)
        if not probe.failures:
            print(f"FAIL the checker passes {what}: {json.dumps(rec)}")
            return 1
    checker = Checker(doc)
    with open(argv[1], encoding="utf-8") as f:
        for line in f:
            checker.check(json.loads(line))
    for (where, status, what), (count, example) in sorted(checker.failures.items()):
        print(f"FAIL {where} {status}: {what} [{count}x, e.g. {example}]")
    print(f"openapi_responses: {checker.checked} responses checked against the document, "
          f"{checker.skipped} not checkable, {len(checker.failures)} failures "
          f"(and the {len(DRIFTED)} drifted samples each failed)")
    if checker.checked == 0:
        print("FAIL no response was checked: is FITD_RESPONSE_LOG reaching the tests?")
        return 1
    return 1 if checker.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
