#!/usr/bin/env bash
# Runs Apicurio Registry in the foreground (exec: the PID is the JVM itself).
#   PORT      (required) HTTP port, bound on 127.0.0.1 only
#   DATA_DIR  (required) writable dir for temp files (storage itself is in-memory H2)
#   JAVA_OPTS (optional) extra JVM flags, appended last so they win
# Confluent-compatible base URL: http://127.0.0.1:$PORT/apis/ccompat/v7
# Ready when GET /health/ready (or /apis/ccompat/v7/subjects) answers 200.
set -euo pipefail

SERVER="schema-registry (Apicurio Registry)"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../../.." && pwd)"
DEST="${CQRS_SYNC_CACHE:-$REPO_ROOT/.cache/servers}/schema-registry"

die() { echo "run.sh [$SERVER]: $*" >&2; exit 1; }

: "${PORT:?run.sh [$SERVER]: PORT is required}"
: "${DATA_DIR:?run.sh [$SERVER]: DATA_DIR is required}"
[ -f "$DEST/VERSION" ] || die "not installed in $DEST (run infra/local/schema-registry/install.sh)"
SR_VERSION="$(cat "$DEST/VERSION")"
JAR="$DEST/dist/apicurio-registry-app-${SR_VERSION}-runner.jar"
[ -f "$JAR" ] || die "missing $JAR (re-run install.sh)"
command -v java >/dev/null 2>&1 || die "'java' not found on PATH"

mkdir -p "$DATA_DIR/tmp"
DATA_DIR="$(cd "$DATA_DIR" && pwd)"

# shellcheck disable=SC2086 # JAVA_OPTS is a word list on purpose
exec java \
  -Xms64m -Xmx384m -XX:+UseSerialGC -XX:MaxMetaspaceSize=192m -Xss512k \
  -XX:TieredStopAtLevel=1 \
  -Djava.io.tmpdir="$DATA_DIR/tmp" \
  -Dvertx.cacheDirBase="$DATA_DIR/tmp/vertx-cache" \
  -Dquarkus.http.host=127.0.0.1 \
  -Dquarkus.http.port="$PORT" \
  -Dquarkus.http.cors=false \
  -Dquarkus.oidc.tenant-enabled=false \
  -Dapicurio.authn.basic-client-credentials.enabled=false \
  -Dapicurio.auth.role-based-authorization=false \
  -Dapicurio.storage.kind=sql \
  -Dapicurio.storage.sql.kind=h2 \
  -Dapicurio.datasource.url="jdbc:h2:mem:registry_${PORT}" \
  -Dapicurio.datasource.jdbc.initial-size=2 \
  -Dapicurio.datasource.jdbc.min-size=2 \
  -Dapicurio.datasource.jdbc.max-size=20 \
  -Dapicurio.import.work-dir="$DATA_DIR/tmp" \
  -Dapicurio.storage.snapshot.location="$DATA_DIR/tmp" \
  -Dapicurio.rest.artifact.deletion.enabled=true \
  -Dquarkus.log.console.format='%d{yyyy-MM-dd HH:mm:ss,SSS} %-5p [%c{3.}] (%t) %s%e%n' \
  ${JAVA_OPTS:-} \
  -jar "$JAR"
