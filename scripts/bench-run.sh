#!/usr/bin/env bash
# `kepmlog run` beside `kepmlog pipe` on the same lines, in the same run: N lines (default
# 100,000) from a bash script, against `kepm-devagent serve --deny-visible --allow
# KeeperLogger`. Prints lines/s, CPU per line (kepmlog's user+system time, the generator's
# own CPU subtracted for `run`, whose child it is) and what the broker received: nothing may
# be lost.
#   scripts/bench-run.sh [N]      (builds kepmlog and kepm-devagent; debug unless PROFILE=release)
set -euo pipefail
cd "$(dirname "$0")/.."
export TMPDIR=/tmp
n=${1:-100000}
profile=${PROFILE:-debug}
tdir=${CARGO_TARGET_DIR:-target}
flag=(); [ "$profile" = release ] && flag=(--release)
cargo build -q "${flag[@]}" -p kepmlog-cli -p kepm-devagent
kepmlog=$tdir/$profile/kepmlog devagent=$tdir/$profile/kepm-devagent
work=$(mktemp -d)
agent_pid=""
trap '[ -z "$agent_pid" ] || stop_agent; rm -rf "$work"' EXIT
printf '#!/usr/bin/env bash\nseq 1 %s | sed "s/^/bench line /"\n' "$n" >"$work/gen.sh"
. scripts/lib.sh
start_agent bench --deny-visible
export KEEPER_JOB_ID=bench KEEPER_API_BASE=$api_base

# Wall time and the CPU of the waited-for processes, from getrusage(RUSAGE_CHILDREN).
measure() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.monotonic()
rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
wall = time.monotonic() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{rc} {wall:.3f} {ru.ru_utime + ru.ru_stime:.3f}")
PY
}
received() { grep '"topic":"KeeperLogger"' "$work/out" | grep -c "\"Source\":\"$1\"" || true; }

read -r _ _ gen_cpu < <(measure bash "$work/gen.sh")
read -r pipe_rc pipe_wall pipe_cpu < <(measure bash -c "bash '$work/gen.sh' | '$kepmlog' --source bench-pipe pipe --timeout 60")
pipe_cpu=$(python3 -c "print(max(0.0, $pipe_cpu - $gen_cpu))")
read -r run_rc run_wall run_cpu < <(measure "$kepmlog" --source bench-run --timeout 60 run -- bash "$work/gen.sh")
run_cpu=$(python3 -c "print(max(0.0, $run_cpu - $gen_cpu))")
# kepmlog exits once the broker acknowledged every line; the devagent's capture subscriber
# may still be writing them out: wait until the count stops growing.
last=-1
for _ in $(seq 1 60); do
  pipe_got=$(received bench-pipe) run_got=$(received bench-run)
  [ $((pipe_got + run_got)) -eq $((2 * n)) ] && break
  [ $((pipe_got + run_got)) -eq "$last" ] && break
  last=$((pipe_got + run_got)); sleep 1
done
echo "bench-run: $n lines, $profile build, generator CPU ${gen_cpu}s (subtracted)"
for row in "pipe $pipe_rc $pipe_wall $pipe_cpu $pipe_got" "run $run_rc $run_wall $run_cpu $run_got"; do
  set -- $row
  python3 -c "
n=$n; name,rc,wall,cpu,got='$1',$2,$3,$4,$5
print(f'kepmlog {name:<4}  exit {rc}  {wall:6.2f} s  {n/wall:9,.0f} lines/s  {cpu*1e6/n:6.1f} us CPU/line  received {got:,}/{n:,}' + ('' if got==n else '  LOST'))
"
done
[ "$pipe_got" -eq "$n" ] && [ "$run_got" -eq "$n" ] && [ "$pipe_rc" -eq 0 ] && [ "$run_rc" -eq 0 ]
