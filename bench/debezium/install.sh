#!/usr/bin/env bash
# Fetches Kafka Connect (runtime + JSON converter) and Debezium's JDBC sink connector from Maven
# Central into ${CQRS_SYNC_CACHE:-.cache}/bench/debezium/lib. Idempotent.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DEST="${CQRS_SYNC_BENCH_CACHE:-$ROOT/.cache/bench/debezium}"
STAMP="$(sha256sum "$HERE/pom.xml" | cut -c1-16)"
if [ -f "$DEST/.installed" ] && [ "$(cat "$DEST/.installed")" = "$STAMP" ]; then exit 0; fi
mkdir -p "$DEST/lib"
mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies -DoutputDirectory="$DEST/lib" -DincludeScope=runtime >&2
echo "$STAMP" > "$DEST/.installed"
