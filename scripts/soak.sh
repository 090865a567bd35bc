#!/bin/sh
# scripts/soak.sh [--duration 10m] [--clients 64] [--sample 5s]
#
# The chaos setup without faults: steady provisions with fresh evidence
# against 3 replicas; samples RSS, goroutines and open files of every
# replica (their /metrics) every few seconds and prints the samples and
# their growth after warm-up (the first quarter) in a JSON summary.
# It is scripts/chaos.sh in soak mode (the later flags win).
set -eu
exec "$(dirname "$0")/chaos.sh" --soak --duration 10m --clients 64 "$@"
