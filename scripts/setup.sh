#!/usr/bin/env bash
# Installs the system packages the tests and the demo need (Debian/Ubuntu). Idempotent.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_tools setup /usr/sbin/mosquitto:mosquitto mosquitto_passwd:mosquitto
# The Debian package starts a system-wide broker on 1883; the tests start their own brokers
# on free ports and do not need it.
command -v cargo >/dev/null || { echo "setup: cargo not found: install Rust (rustup)" >&2; exit 1; }
