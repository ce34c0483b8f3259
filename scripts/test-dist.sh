#!/usr/bin/env bash
# Prebuilt artifacts suite (scripts/test.sh runs it after scripts/test-cross.sh, whose Windows
# release builds it reuses): scripts/dist.sh for Linux x86_64 and Windows, then every check of
# scripts/check-dist.sh on what a user gets from dist/, with no Rust toolchain on PATH. The
# other targets (aarch64 Linux, macOS): `scripts/check-dist.sh --all`, outside CI (time).
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/check-dist.sh
