#!/usr/bin/env bash
# Runs the MongoDB stand-in (mongo-java-server, oplog enabled so change streams
# work) on loopback, in the FOREGROUND: the final `exec` makes this process the
# JVM itself, so the PID the harness spawned receives SIGTERM/SIGKILL directly.
#
# Env:
#   PORT                  (required) listens on 127.0.0.1:$PORT
#   DATA_DIR              (required) writable dir, fresh or existing; only the h2
#                         backend stores data there (mongo.mv.db)
#   JAVA_OPTS             (optional) appended after the defaults (can override -Xmx)
#   MONGO_BACKEND         (optional) memory (default: empty after every restart) | h2
#   MONGO_SERVER_VERSION  (optional) 5.0 (default) | 4.0 | 3.6 — the Node driver 6.x needs 5.0
#   CQRS_SYNC_CACHE       (optional) server cache root, as for install.sh
#
# Needs infra/local/mongo-stand-in/install.sh to have run. Logs go to stdout/stderr.
# Ready when stdout shows "mongo-java-server <version> listening on 127.0.0.1:<port>".
# Connect with mongodb://127.0.0.1:$PORT/?directConnection=true
set -euo pipefail

NAME=mongo-stand-in
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../../.." && pwd)"
CACHE_ROOT="${CQRS_SYNC_CACHE:-$REPO_ROOT/.cache/servers}"
DEST="$CACHE_ROOT/$NAME"

die() { echo "[$NAME run] ERROR: $*" >&2; exit 1; }

: "${PORT:?[mongo-stand-in run] PORT is required}"
: "${DATA_DIR:?[mongo-stand-in run] DATA_DIR is required}"
case "$PORT" in *[!0-9]*) die "PORT must be a number";; esac

if [ ! -f "$DEST/.installed" ] || [ ! -f "$DEST/classes/MongoStandIn.class" ]; then
  die "not installed in $DEST; run infra/local/mongo-stand-in/install.sh first"
fi
command -v java >/dev/null 2>&1 || die "'java' not found on PATH"

mkdir -p "$DATA_DIR"
DATA_DIR="$(cd "$DATA_DIR" && pwd)"
[ -w "$DATA_DIR" ] || die "DATA_DIR $DATA_DIR is not writable"
export PORT DATA_DIR

# The memory backend keeps every database and the whole oplog of a test run on the heap: 256m ran
# out (OutOfMemoryError) midway through a full `npm test` on 2026-11-30, failing three suites.
# shellcheck disable=SC2086  # JAVA_OPTS is a whitespace-separated option list
exec java \
  -Xms32m -Xmx1g -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError \
  -Djava.awt.headless=true \
  -Dmongo.java.server.version="$(cat "$DEST/VERSION")" \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=info \
  -Dorg.slf4j.simpleLogger.showDateTime=true \
  -Dorg.slf4j.simpleLogger.dateTimeFormat="yyyy-MM-dd'T'HH:mm:ss.SSS" \
  ${JAVA_OPTS:-} \
  -cp "$DEST/classes:$DEST/lib/*" MongoStandIn
