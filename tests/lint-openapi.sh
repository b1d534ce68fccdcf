#!/bin/sh
# Lint api-docs/openapi.yaml with a pinned OpenAPI linter from npm (Redocly CLI,
# its built-in "recommended" rules). Run from the repository root; needs node/npx
# and access to the npm registry (or a warm npx cache). Exit status: the linter's.
set -eu
REDOCLY_VERSION=2.77.0
cd "$(dirname "$0")/.."
if ! command -v npx >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >/dev/null
fi
# /healthz and /v1/openapi.yaml have no client errors to document.
exec npx --yes "@redocly/cli@${REDOCLY_VERSION}" lint --format=stylish --skip-rule=operation-4xx-response api-docs/openapi.yaml
