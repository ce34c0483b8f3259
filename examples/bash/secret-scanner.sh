#!/usr/bin/env bash
# KEPM job task in bash, run under `kepmlog run` (examples/jobs/secret-scanner-bash.json):
# kepmlog is the process the agent's runner starts, so the agent trusts it, and this script
# only writes lines. stdout lines are Info records, stderr lines Warning; a line in the
# kepmlog protocol sets the level, category or context, or sends an event:
#   ::warning category=Finding::text     ::event::{"phase":"scan"}     (cli/README.md)
# Scans DIR (default: the current directory) for text that looks like a plain-text secret.
set -uo pipefail
dir=${1:-.}

echo "::info category=Startup::Scanning $dir for plain-text secrets"
echo '::event::{"phase":"scan","status":"started"}'

files=0 issues=0
while IFS= read -r -d '' f; do
  files=$((files + 1))
  # The markers the other examples' scanners look for (examples/rust/src/main.rs).
  if grep -qF -e '-----BEGIN RSA PRIVATE KEY-----' -e '-----BEGIN OPENSSH PRIVATE KEY-----' \
       -e '-----BEGIN PRIVATE KEY-----' -e 'AKIA' -e 'password=' -e 'secret_key' "$f" 2>/dev/null; then
    issues=$((issues + 1))
    # A comma in a property value would be %2C; the message after :: is free text.
    echo "::warning category=Finding,context=scanner%3Dbash::Possible secret in $f"
  fi
done < <(find "$dir" -type f -size -1024k -not -path '*/.git/*' -not -path '*/target/*' \
           -not -path '*/node_modules/*' -print0)

echo "::event::{\"phase\":\"scan\",\"status\":\"done\",\"files\":$files,\"issues\":$issues}"
echo "::warning category=SecretsScan::Scan complete: $issues issue(s) detected in $files file(s)."
# Findings are the report, not a failure of the task.
exit 0
