#!/usr/bin/env bash
# Installs the local single-node Kafka (KRaft) test server from Maven Central.
#
#   infra/local/kafka/install.sh
#
# Result: ${CQRS_SYNC_CACHE:-<repo>/.cache/servers}/kafka/
#   lib/        runtime jars (kafka_2.13 + deps + slf4j/reload4j binding)
#   VERSION     the exact Kafka version, e.g. "3.9.2"
#   .installed  "<version> <pom hash>", written last: its presence means success
#
# Idempotent: when .installed matches this pom it exits at once. Safe to run
# concurrently (flock). The Kafka version comes from <kafka.version> in pom.xml.
set -euo pipefail

NAME=kafka
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../../.." && pwd)"
CACHE_ROOT="${CQRS_SYNC_CACHE:-$REPO_ROOT/.cache/servers}"
DEST="$CACHE_ROOT/$NAME"
POM="$HERE/pom.xml"

log() { echo "[$NAME install] $*" >&2; }
die() { echo "[$NAME install] ERROR: $*" >&2; exit 1; }

for tool in java javac mvn; do
  command -v "$tool" >/dev/null 2>&1 \
    || die "'$tool' not found on PATH; the $NAME test server needs a JDK (17+) and Maven (e.g. apt-get install openjdk-17-jdk-headless maven)"
done

[ -f "$POM" ] || die "missing $POM"
VERSION="$(sed -n 's:.*<kafka\.version>[[:space:]]*\([^<[:space:]]*\)[[:space:]]*</kafka\.version>.*:\1:p' "$POM" | head -n 1)"
[ -n "$VERSION" ] || die "cannot read <kafka.version> from $POM"
STAMP="$VERSION $(sha256sum "$POM" | cut -c1-16)"

is_installed() {
  [ -f "$DEST/.installed" ] && [ "$(cat "$DEST/.installed")" = "$STAMP" ] && [ -d "$DEST/lib" ]
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

log "installing Apache Kafka $VERSION (kafka_2.13) from Maven Central into $DEST"
START_S=$SECONDS
TMP="$(mktemp -d "$CACHE_ROOT/.$NAME.tmp.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
chmod 755 "$TMP"

if ! mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$TMP/lib" ${CQRS_SYNC_MVN_ARGS:-} >"$TMP/mvn.log" 2>&1; then
  echo "[$NAME install] ERROR: Maven could not download the $NAME $VERSION jars. Last lines of mvn output:" >&2
  tail -n 40 "$TMP/mvn.log" >&2
  exit 1
fi

[ -f "$TMP/lib/kafka_2.13-$VERSION.jar" ] \
  || die "Maven succeeded but $TMP/lib/kafka_2.13-$VERSION.jar is missing"

rm -f "$TMP/mvn.log"
printf '%s\n' "$VERSION" >"$TMP/VERSION"
printf '%s\n' "$STAMP" >"$TMP/.installed"

# Swap in the finished directory (old one, if any, is removed afterwards).
if [ -e "$DEST" ]; then
  mv "$DEST" "$TMP.old"
fi
mv "$TMP" "$DEST"
rm -rf "$TMP.old"
trap - EXIT

log "installed Apache Kafka $VERSION ($(find "$DEST/lib" -name "*.jar" | wc -l) jars) in $((SECONDS - START_S))s"
