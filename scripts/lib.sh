# Shared by the scripts in scripts/: source it, do not run it.
#   . "$(dirname "$0")/lib.sh"

# need_tools WHO SPEC...: installs with apt-get the Debian packages of the tools missing here.
# A SPEC is COMMAND:PACKAGE (looked up on PATH), /ABSOLUTE/PATH:PACKAGE (that file, or its name
# on PATH: e.g. /usr/sbin/mosquitto, which is not on a non-root user's PATH), or python3-venv (the venv and
# ensurepip modules, which Debian ships apart from python3). Idempotent: nothing to install,
# nothing run.
need_tools() {
  local who=$1 spec
  shift
  local need=()
  for spec in "$@"; do
    case $spec in
      python3-venv) python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv) ;;
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
