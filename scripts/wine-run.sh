#!/usr/bin/env bash
# `kepmlog.exe run -- cmd /c script.bat` under Wine against `kepm-devagent serve`: the batch
# file's lines and protocol commands arrive, and killing kepmlog.exe ends its child (the Job
# Object's KILL_ON_JOB_CLOSE). scripts/test-cross.sh runs it; alone:
#   scripts/wine-run.sh KEPMLOG_EXE KEPM_DEVAGENT WINEPREFIX_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
kepmlog_exe=$1 devagent=$2
wine=/usr/lib/wine/wine64
wine_prefix "$3"
export TMPDIR=${TMPDIR:-/tmp}
work=$(mktemp -d)
agent_pid=""
cleanup() { [ -z "$agent_pid" ] || stop_agent; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "wine-run: $1" >&2; cat "$work/out" >&2; exit 1; }
job=wine-run
start_agent "$job"
export KEEPER_JOB_ID=$job KEEPER_JOB_NAME=$job
winpath() { printf 'Z:%s' "$1" | tr / '\\'; }

# cmd.exe's echo prints the rest of the line as written, quotes and braces included.
printf '@echo off\r\necho plain from cmd\r\necho ::warning category=Bat::warned from cmd\r\necho ::event::{"phase":"bat","status":"done"}\r\n>&2 echo to stderr\r\nexit /b 3\r\n' >"$work/script.bat"
code=0
"$wine" "$kepmlog_exe" --keeper-api-base="$api_base" run -- cmd /c "$(winpath "$work/script.bat")" || code=$?
[ "$code" -eq 3 ] || fail "kepmlog.exe run: exit $code, want the batch file's 3"
for _ in $(seq 1 50); do grep -q 'exited with status 3' "$work/out" && break; sleep 0.1; done
for want in '"Message":"plain from cmd"' '"Category":"Bat"' '"Message":"warned from cmd"' \
            '"Message":"to stderr"' '"phase":"bat"' 'exited with status 3'; do
  grep -qF -- "$want" "$work/out" || fail "the broker did not receive $want"
done
grep -Eq "\"client_id\":\"${job}_script_[0-9]+\"" "$work/out" || fail "no client ${job}_script_{pid}"
echo "wine-run: kepmlog.exe run -- cmd /c script.bat: lines, category, event, exit code 3 delivered"

# A batch file that never ends; kepmlog.exe is killed (SIGKILL, as an agent's kill): the
# Job Object's last handle closes and Wine ends cmd.exe with it.
printf '@echo off\r\necho looping\r\n:loop\r\ngoto loop\r\n' >"$work/loop-forever.bat"
"$wine" "$kepmlog_exe" --keeper-api-base="$api_base" run -- cmd /c "$(winpath "$work/loop-forever.bat")" &
runner=$!
for _ in $(seq 1 100); do grep -q '"Message":"looping"' "$work/out" && break; sleep 0.1; done
grep -q '"Message":"looping"' "$work/out" || fail "the looping batch file's first line did not arrive"
pgrep -f 'loop-forever.bat' >/dev/null || fail "cannot see the looping cmd.exe"
kill -KILL "$runner"; wait "$runner" 2>/dev/null || true
gone=0
for _ in $(seq 1 100); do pgrep -f 'loop-forever.bat' >/dev/null || { gone=1; break; }; sleep 0.1; done
[ "$gone" -eq 1 ] || { pkill -f 'loop-forever.bat' || true; fail "cmd.exe outlived the killed kepmlog.exe"; }
echo "wine-run: killing kepmlog.exe ended its cmd.exe child (Job Object)"
