#!/usr/bin/env bash
# Installs Apicurio Registry (Confluent-compatible schema registry, ccompat API)
# from Maven Central into ${CQRS_SYNC_CACHE:-<repo>/.cache/servers}/schema-registry/.
# Idempotent: a second run returns at once when VERSION matches the pom.
set -euo pipefail

SERVER="schema-registry (Apicurio Registry)"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../../.." && pwd)"
POM="$HERE/pom.xml"
CACHE_ROOT="${CQRS_SYNC_CACHE:-$REPO_ROOT/.cache/servers}"
DEST="$CACHE_ROOT/schema-registry"

die() { echo "install.sh [$SERVER]: $*" >&2; exit 1; }

# Single source of the version: <apicurio.version> in pom.xml.
SR_VERSION="$(sed -n 's:.*<apicurio.version>\(.*\)</apicurio.version>.*:\1:p' "$POM" | head -n1)"
[ -n "$SR_VERSION" ] || die "cannot read <apicurio.version> from $POM"
RUNNER="apicurio-registry-app-${SR_VERSION}-runner.jar"

if [ -f "$DEST/VERSION" ] && [ "$(cat "$DEST/VERSION")" = "$SR_VERSION" ] \
   && [ -f "$DEST/dist/$RUNNER" ]; then
  echo "$SERVER $SR_VERSION already installed in $DEST"
  exit 0
fi

command -v java >/dev/null 2>&1 || die "'java' not found on PATH (Java 17+ is required)"
command -v mvn  >/dev/null 2>&1 || die "'mvn' not found on PATH (Maven is required to fetch the distribution)"

mkdir -p "$DEST"
STAGE="$(mktemp -d "$DEST/.stage.XXXXXX")"
LOG="$DEST/install-mvn.log"
trap 'rm -rf "$STAGE"' EXIT

echo "Installing $SERVER $SR_VERSION into $DEST ..."
# io.apicurio:apicurio-registry-app:<v>:tar.gz:all is a Quarkus legacy-jar
# distribution: <v>-runner.jar + lib/ (about 110 MB unpacked).
if ! mvn -q -B -f "$POM" dependency:unpack \
      -Dapicurio.version="$SR_VERSION" \
      -Dsr.outputDir="$STAGE/dist" ${CQRS_SYNC_MVN_ARGS:-} >"$LOG" 2>&1; then
  echo "install.sh [$SERVER]: Maven download/unpack of io.apicurio:apicurio-registry-app:${SR_VERSION}:tar.gz:all failed; last lines of $LOG:" >&2
  tail -n 30 "$LOG" | sed "s/\x1b\[[0-9;]*m//g" >&2
  exit 1
fi
[ -f "$STAGE/dist/$RUNNER" ] || die "unpacked distribution has no $RUNNER (see $LOG)"
rm -rf "$STAGE/dist/.markers"

rm -rf "$DEST/dist" "$DEST/VERSION"
mv "$STAGE/dist" "$DEST/dist"
# VERSION is written last: it is the "install complete" marker.
printf '%s\n' "$SR_VERSION" >"$DEST/VERSION"
echo "$SERVER $SR_VERSION installed in $DEST"
