#!/usr/bin/env bash
# Installs the local MongoDB stand-in (mongo-java-server) from Maven Central and
# compiles its launcher (src/MongoStandIn.java).
#
#   infra/local/mongo-stand-in/install.sh
#
# Result: ${CQRS_SYNC_CACHE:-<repo>/.cache/servers}/mongo-stand-in/
#   lib/        mongo-java-server jars (+ netty, memory and h2 backends, slf4j-simple)
#   classes/    MongoStandIn.class
#   VERSION     the exact mongo-java-server version, e.g. "1.47.0"
#   .installed  "<version> <hash of pom + launcher>", written last: its presence means success
#
# Idempotent: when .installed matches the pom and launcher source it exits at
# once. Safe to run concurrently (flock). The version comes from
# <mongo-java-server.version> in pom.xml.
set -euo pipefail

NAME=mongo-stand-in
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../../.." && pwd)"
CACHE_ROOT="${CQRS_SYNC_CACHE:-$REPO_ROOT/.cache/servers}"
DEST="$CACHE_ROOT/$NAME"
POM="$HERE/pom.xml"
SRC="$HERE/src/MongoStandIn.java"

log() { echo "[$NAME install] $*" >&2; }
die() { echo "[$NAME install] ERROR: $*" >&2; exit 1; }

for tool in java javac mvn; do
  command -v "$tool" >/dev/null 2>&1 \
    || die "'$tool' not found on PATH; the $NAME test server needs a JDK (17+) and Maven (e.g. apt-get install openjdk-17-jdk-headless maven)"
done

[ -f "$POM" ] || die "missing $POM"
[ -f "$SRC" ] || die "missing $SRC"
VERSION="$(sed -n 's:.*<mongo-java-server\.version>[[:space:]]*\([^<[:space:]]*\)[[:space:]]*</mongo-java-server\.version>.*:\1:p' "$POM" | head -n 1)"
[ -n "$VERSION" ] || die "cannot read <mongo-java-server.version> from $POM"
STAMP="$VERSION $(cat "$POM" "$SRC" | sha256sum | cut -c1-16)"

is_installed() {
  [ -f "$DEST/.installed" ] && [ "$(cat "$DEST/.installed")" = "$STAMP" ] \
    && [ -d "$DEST/lib" ] && [ -f "$DEST/classes/MongoStandIn.class" ]
}

if is_installed; then
  exit 0
fi

mkdir -p "$CACHE_ROOT"
# Serialise concurrent installs (e.g. parallel test workers); re-check afterwards.
exec 9>"$CACHE_ROOT/.$NAME.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi
if is_installed; then
  exit 0
fi

log "installing mongo-java-server $VERSION from Maven Central into $DEST"
START_S=$SECONDS
TMP="$(mktemp -d "$CACHE_ROOT/.$NAME.tmp.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
chmod 755 "$TMP"

if ! mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$TMP/lib" ${CQRS_SYNC_MVN_ARGS:-} >"$TMP/mvn.log" 2>&1; then
  echo "[$NAME install] ERROR: Maven could not download the $NAME (mongo-java-server $VERSION) jars. Last lines of mvn output:" >&2
  tail -n 40 "$TMP/mvn.log" >&2
  exit 1
fi

[ -f "$TMP/lib/mongo-java-server-core-$VERSION.jar" ] \
  || die "Maven succeeded but $TMP/lib/mongo-java-server-core-$VERSION.jar is missing"

mkdir -p "$TMP/classes"
if ! javac -nowarn --release 17 -encoding UTF-8 -cp "$TMP/lib/*" -d "$TMP/classes" "$SRC" >"$TMP/javac.log" 2>&1; then
  echo "[$NAME install] ERROR: javac failed to compile $SRC:" >&2
  tail -n 40 "$TMP/javac.log" >&2
  exit 1
fi

rm -f "$TMP/mvn.log" "$TMP/javac.log"
printf '%s\n' "$VERSION" >"$TMP/VERSION"
printf '%s\n' "$STAMP" >"$TMP/.installed"

# Swap in the finished directory (old one, if any, is removed afterwards).
if [ -e "$DEST" ]; then
  mv "$DEST" "$TMP.old"
fi
mv "$TMP" "$DEST"
rm -rf "$TMP.old"
trap - EXIT

log "installed mongo-java-server $VERSION ($(find "$DEST/lib" -name "*.jar" | wc -l) jars) in $((SECONDS - START_S))s"
