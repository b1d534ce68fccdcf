#!/usr/bin/python3
"""openapi_query.py — the query parameters each route takes, against
api-docs/openapi.yaml.

    /usr/bin/python3 tests/openapi_query.py ROUTES.txt

ROUTES.txt is `test_openapi --routes`: one line per route the server registers,
"METHOD PATTERN" then the query parameters it takes (http_route.query; any other
is a 400), or "*" for a route that does not look at its query (the dashboard,
probes, /metrics: it must document none). Each route's set must equal the
`in: query` parameters its operation documents (operation and path level, $refs
followed). Exits 0 when all agree, 1
naming each difference, 2 on a usage error. Needs Debian's python3-yaml.
"""
import sys

import yaml

DOC = "api-docs/openapi.yaml"


def documented(doc):
    """{(METHOD, path): set of query parameter names} for every operation."""
    def resolve(p):
        while "$ref" in p:
            node = doc
            for part in p["$ref"].lstrip("#/").split("/"):
                node = node[part]
            p = node
        return p

    out = {}
    for path, item in doc["paths"].items():
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method not in ("get", "put", "post", "delete", "patch"):
                continue
            params = [resolve(p) for p in shared + op.get("parameters", [])]
            out[(method.upper(), path)] = {p["name"] for p in params if p.get("in") == "query"}
    return out


def compare(routes, docs):
    """The differences, one line each."""
    problems = []
    for key, takes in sorted(routes.items()):
        if key not in docs:
            problems.append("%s %s: served, not in %s (test_openapi's check)" % (key + (DOC,)))
            continue
        if takes != docs[key]:
            problems.append("%s %s: the server takes {%s}, the document lists {%s}"
                            % (key + (", ".join(sorted(takes)), ", ".join(sorted(docs[key])))))
    return problems


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[3].strip(), file=sys.stderr)
        return 2
    routes = {}
    with open(argv[1], encoding="utf-8") as f:
        for line in f:
            words = line.split()
            if len(words) >= 2:
                # "*" takes nothing that needs documenting: compared as none.
                routes[(words[0], words[1])] = set(w for w in words[2:] if w != "*")
    if not routes:
        print("no routes in %s" % argv[1], file=sys.stderr)
        return 2
    with open(DOC, encoding="utf-8") as f:
        docs = documented(yaml.safe_load(f))
    # The comparison must be able to fail: one parameter more, one less.
    for key in routes:
        if routes[key]:
            assert compare({key: routes[key] | {"extra"}}, docs), "an extra parameter went unseen"
            assert compare({key: set()}, docs), "a missing parameter went unseen"
            break
    problems = compare(routes, docs)
    for p in problems:
        print(p)
    print("%d routes, %d with query parameters, %d differences"
          % (len(routes), sum(1 for t in routes.values() if t), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
