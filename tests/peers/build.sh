#!/usr/bin/env bash
# Build the real peers the tests run against, pinned and cached outside the work tree.
#
#   bash tests/peers/build.sh jaeger|otelcol|ferretdb [...]   -> one binary path per line
#
# Each peer is a small Go module under tests/peers/<name>/ (go.mod, go.sum and, for the
# collector and FerretDB, a main.go); its pins are its go.mod. The binary goes to
#   ${OTEL_DIAG_PEERS_CACHE:-$HOME/.cache/otel-diag/peers}/<name>-<hash>/<binary>
# where <hash> covers the module's files, the Go version and the build flags, so a binary is
# built once and rebuilt only when a pin (or the toolchain) changes. A warm call costs a hash.
#
# stdout carries only the binary paths. A missing or too old Go toolchain, or a failed build,
# prints one line to stderr saying what to install or what failed (with the build log's
# path) and exits non-zero. Builds of one peer are serialized with a lock, and a binary
# appears in the cache only once complete.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
CACHE="${OTEL_DIAG_PEERS_CACHE:-$HOME/.cache/otel-diag/peers}"
# Never let the go command fetch another toolchain behind our back, never rewrite go.mod.
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false"
BUILD_FLAGS=(-trimpath -ldflags=-s\ -w)

die() { echo "build.sh: $*" >&2; exit 1; }

# name -> "<package to build> <binary name>"
target() {
  case "$1" in
    jaeger) echo "github.com/jaegertracing/jaeger/cmd/jaeger jaeger" ;;
    otelcol) echo ". otelcol-otel-diag" ;;
    ferretdb) echo ". ferretdb-otel-diag" ;;
    *) return 1 ;;
  esac
}

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

build() {
  local name="$1" dir="$HERE/$1" spec pkg bin
  spec="$(target "$name")" || die "unknown peer '$name' (known: jaeger, otelcol, ferretdb)"
  read -r pkg bin <<<"$spec"

  command -v go >/dev/null ||
    die "no Go toolchain on PATH: install Go >= $(go_line "$dir") (https://go.dev/dl/) to build the $name peer"
  local have need
  have="$(go env GOVERSION | sed 's/^go//')"
  need="$(go_line "$dir")"
  version_ge "$have" "$need" ||
    die "Go $have is too old for the $name peer: install Go >= $need (https://go.dev/dl/)"

  local hash
  hash="$( (cd "$dir" && cat go.mod go.sum $(ls *.go 2>/dev/null); echo "$have $pkg ${BUILD_FLAGS[*]}") |
    sha256sum | cut -c1-16)"
  local out="$CACHE/$name-$hash"
  if [ -x "$out/$bin" ]; then
    echo "$out/$bin"
    return
  fi

  mkdir -p "$CACHE"
  exec 9>"$CACHE/.$name.lock"
  flock 9
  if [ ! -x "$out/$bin" ]; then # another process may have built it while we waited
    local log="$CACHE/$name-$hash.log" tmp
    tmp="$(mktemp -d "$CACHE/.$name-build.XXXXXX")"
    echo "build.sh: building $name (pins: tests/peers/$name/go.mod; a cold build takes minutes); log: $log" >&2
    local start=$SECONDS
    if ! (cd "$dir" && go build "${BUILD_FLAGS[@]}" -o "$tmp/$bin" "$pkg") >"$log" 2>&1; then
      rm -rf "$tmp"
      die "building the $name peer failed ($(grep -m1 -v '^go: downloading' "$log" || echo 'no output')); full log: $log"
    fi
    echo "build.sh: built $name in $((SECONDS - start)) s" >&2
    chmod 755 "$tmp"
    rm -rf "$out"
    mv "$tmp" "$out"
  fi
  exec 9>&-
  echo "$out/$bin"
}

# The `go` line of a peer's go.mod: the oldest toolchain that builds it.
go_line() { sed -n 's/^go \([0-9.]*\)$/\1/p' "$1/go.mod"; }

[ $# -gt 0 ] || die "usage: $0 jaeger|otelcol|ferretdb [...]"
for name in "$@"; do
  build "$name"
done
