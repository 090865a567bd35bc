#!/usr/bin/env bash
# Build the asps container image with podman (Debian's package) from a
# static binary built here: no base image is pulled.
#   deploy/build-image.sh [TAG]     default tag: asps:latest
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tag=${1:-asps:latest}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
version=$(git describe --always --dirty 2>/dev/null || echo dev)
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
CGO_ENABLED=0 go build -trimpath \
	-ldflags "-s -w -X main.version=$version -X main.commit=$commit -X main.date=$(date -u +%FT%TZ)" \
	-o "$ctx/asps" ./cmd/asps
cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
cp deploy/Containerfile "$ctx/"
podman build --label "org.opencontainers.image.version=$version" -t "$tag" -f "$ctx/Containerfile" "$ctx"
