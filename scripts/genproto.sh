#!/usr/bin/env bash
# Regenerate the Go code of the .proto files under api/.
#
#   scripts/genproto.sh            regenerate in place (api/**/*.pb.go)
#   scripts/genproto.sh --out DIR  generate into DIR instead (same layout as api/)
#   scripts/genproto.sh --check    generate into a temp dir and fail if the
#                                  committed files differ
#   scripts/genproto.sh --tools    only install the tools; print the plugin dir
#
# Tools, all pinned (the versions are written into the generated headers, so a
# different version means a different output):
#   protoc              Debian's protobuf-compiler (bookworm: 3.21.12), installed
#                       with apt-get when missing and running as root.
#   protoc-gen-go       google.golang.org/protobuf/cmd/protoc-gen-go
#   protoc-gen-go-grpc  google.golang.org/grpc/cmd/protoc-gen-go-grpc
# The plugins are built with `go install` into ASPS_PROTO_BIN (default
# ${TMPDIR:-/tmp}/asps-proto-tools), outside the repository and outside GOPATH/bin;
# they are rebuilt only when missing or of another version.
#
# Environment:
#   ASPS_PROTO_BIN        where the plugins live (see above)
#   PROTOC                protoc binary to use (default: protoc in PATH)
#   ASPS_PROTOC_ANY=1     accept a protoc other than the pinned version (the
#                         headers will then differ from the committed ones)
set -euo pipefail

PROTOC_VERSION="3.21.12"
PROTOC_GEN_GO_VERSION="v1.36.12"
PROTOC_GEN_GO_GRPC_VERSION="v1.6.2"

# The .proto files, relative to api/ (the import root).
PROTOS=(
	asps/v1/asps.proto
	occlum/ratls.proto
	intelasps/secretmanager.proto
)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
API="$ROOT/api"
BIN="${ASPS_PROTO_BIN:-${TMPDIR:-/tmp}/asps-proto-tools}"

die() { echo "genproto: $*" >&2; exit 1; }

mode=inplace
out=""
case "${1:-}" in
"") ;;
--out) [ $# -eq 2 ] || die "usage: $0 --out DIR"; mode=out; out="$2" ;;
--check) mode=check ;;
--tools) mode=tools ;;
-h | --help) sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
*) die "unknown argument: $1 (try --help)" ;;
esac

install_protoc() {
	if [ -n "${PROTOC:-}" ]; then
		[ -x "$PROTOC" ] || die "PROTOC=$PROTOC is not executable"
		return
	fi
	if ! command -v protoc >/dev/null 2>&1; then
		if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
			echo "genproto: installing protoc (apt-get install protobuf-compiler)" >&2
			apt-get update -qq >&2
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >&2
		else
			die "protoc not found: install Debian's protobuf-compiler ($PROTOC_VERSION) or set PROTOC"
		fi
	fi
	PROTOC="$(command -v protoc)"
}

check_protoc_version() {
	local v
	v="$("$PROTOC" --version)" # "libprotoc 3.21.12"
	v="${v##* }"
	if [ "$v" != "$PROTOC_VERSION" ]; then
		if [ "${ASPS_PROTOC_ANY:-}" = 1 ]; then
			echo "genproto: warning: protoc $v, not the pinned $PROTOC_VERSION: generated headers will differ" >&2
		else
			die "protoc is $v, the pinned version is $PROTOC_VERSION (set ASPS_PROTOC_ANY=1 to use it anyway)"
		fi
	fi
}

# plugin_version BIN: the version the plugin reports, with a leading "v".
plugin_version() {
	local v
	v="$("$1" --version 2>/dev/null)" || return 0 # "protoc-gen-go v1.36.12" / "protoc-gen-go-grpc 1.6.2"
	v="${v##* }"
	echo "v${v#v}"
}

install_plugin() { # name module-path version
	local name="$1" pkg="$2" want="$3"
	if [ -x "$BIN/$name" ] && [ "$(plugin_version "$BIN/$name")" = "$want" ]; then
		return
	fi
	echo "genproto: installing $name $want into $BIN" >&2
	mkdir -p "$BIN"
	# Run outside the module so its go.mod and any GOFLAGS do not interfere.
	(cd "$BIN" && GOFLAGS='' GOBIN="$BIN" go install "$pkg@$want") >&2
	[ "$(plugin_version "$BIN/$name")" = "$want" ] || die "$name in $BIN is not $want after go install"
}

install_tools() {
	install_protoc
	check_protoc_version
	install_plugin protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
	install_plugin protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"
}

# generate DIR: write the generated Go files into DIR, laid out as under api/.
generate() {
	local dir="$1"
	mkdir -p "$dir"
	(cd "$API" && "$PROTOC" \
		--proto_path=. \
		--plugin=protoc-gen-go="$BIN/protoc-gen-go" \
		--plugin=protoc-gen-go-grpc="$BIN/protoc-gen-go-grpc" \
		--go_out="$dir" --go_opt=paths=source_relative \
		--go-grpc_out="$dir" --go-grpc_opt=paths=source_relative \
		"${PROTOS[@]}")
}

install_tools

case "$mode" in
tools)
	echo "$BIN"
	;;
out)
	mkdir -p "$out"
	generate "$(cd "$out" && pwd)"
	;;
inplace)
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' EXIT
	generate "$tmp"
	# Replace the generated files only, so a stale one (from a removed
	# .proto) goes away and nothing else under api/ is touched.
	find "$API" -name '*.pb.go' -delete
	(cd "$tmp" && find . -name '*.pb.go' -print0) | while IFS= read -r -d '' f; do
		mkdir -p "$API/$(dirname "$f")"
		cp "$tmp/$f" "$API/$f"
	done
	echo "genproto: regenerated $(cd "$tmp" && find . -name '*.pb.go' | wc -l) files under api/" >&2
	;;
check)
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' EXIT
	generate "$tmp"
	committed="$(cd "$API" && find . -name '*.pb.go' | sort)"
	fresh="$(cd "$tmp" && find . -name '*.pb.go' | sort)"
	if [ "$committed" != "$fresh" ]; then
		diff <(echo "$committed") <(echo "$fresh") >&2 || true
		die "the set of generated files differs from api/: run scripts/genproto.sh"
	fi
	status=0
	while IFS= read -r f; do
		cmp -s "$API/$f" "$tmp/$f" || { echo "genproto: stale: api/${f#./}" >&2; status=1; }
	done <<<"$fresh"
	[ "$status" = 0 ] || die "generated code is out of date: run scripts/genproto.sh"
	echo "genproto: generated code is current" >&2
	;;
esac
