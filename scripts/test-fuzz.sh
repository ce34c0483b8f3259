#!/usr/bin/env bash
# Fuzz smoke run (scripts/test.sh runs it): every cargo-fuzz target (fuzz/, docs/fuzzing.md)
# for 10 s on its checked-in corpus, built with the dev profile (debug assertions, overflow
# checks, AddressSanitizer), failing on any crash, panic, broken invariant, leak past the
# memory limit or hang. Installs nightly and cargo-fuzz when missing. Longer, optimised runs:
# scripts/fuzz.sh [SECONDS].
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/fuzz.sh --dev "${KEPMLOG_FUZZ_SECONDS:-10}"
