<#
.SYNOPSIS
  KEPM job task in PowerShell: reports the files older than -Days in a folder (default: the
  service account's TEMP) to the agent's KeeperLogger through kepmlog.exe. Deletes nothing.

.DESCRIPTION
  The agent starts it as the task in temp-report.json says, from ONE command-line string:
    powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass -File "C:\...\temp-report.ps1" -KeeperApiBase https://127.0.0.1:6889 -Days 30
  with KEEPER_JOB_ID set. kepmlog.exe is installed next to this script (or on PATH).
  Works in Windows PowerShell 5.1 and PowerShell 7.
#>
param(
    # {KeeperApiBaseUrl}, substituted by the agent in the task's arguments.
    [string]$KeeperApiBase = 'https://127.0.0.1:6889',
    [string]$Path = $env:TEMP,
    [int]$Days = 30
)

# kepmlog.exe cannot read this script's command line on Windows (on Linux it reads its
# caller's): give it the API base, the token of the client id {jobId}_{token}_{pid} and the
# Source once, through the environment every kepmlog call below inherits.
$env:KEEPER_API_BASE = $KeeperApiBase
$env:KEPMLOG_TOKEN = 'temp-report'
$env:KEPMLOG_SOURCE = 'TempReport'
# Text piped into a native program is encoded with $OutputEncoding, ASCII by default in
# Windows PowerShell 5.1: every non-ASCII character of a path would arrive as '?'.
$OutputEncoding = New-Object System.Text.UTF8Encoding $false

$kepmlog = Join-Path $PSScriptRoot 'kepmlog.exe'
if (-not (Test-Path -LiteralPath $kepmlog)) { $kepmlog = 'kepmlog.exe' }

# kepmlog's exit status: 0 delivered, 1 not delivered in time, 2 bad input; its stderr says
# why. Its stderr is not redirected here: with 2>&1, Windows PowerShell 5.1 turns each line
# into an error record, and under $ErrorActionPreference = 'Stop' into a terminating one.
function Send-Log([string]$Level, [string]$Category, [string]$Message) {
    & $kepmlog log --level $Level --category $Category $Message
    if ($LASTEXITCODE -ne 0) { Write-Warning "kepmlog log exited with status $LASTEXITCODE" }
}

# Events go through stdin: Windows PowerShell 5.1 strips the double quotes out of a JSON
# argument passed to a native program.
function Send-Event([hashtable]$Fields) {
    $Fields | ConvertTo-Json -Compress | & $kepmlog event -
    if ($LASTEXITCODE -ne 0) { Write-Warning "kepmlog event exited with status $LASTEXITCODE" }
}

Send-Log info Startup "Looking for files older than $Days day(s) in $Path"
Send-Event @{ phase = 'scan'; status = 'started' }

$cutoff = (Get-Date).AddDays(-$Days)
$old = @(Get-ChildItem -LiteralPath $Path -File -Recurse -Force -ErrorAction SilentlyContinue |
    Where-Object { $_.LastWriteTime -lt $cutoff })
$bytes = [long]($old | Measure-Object -Property Length -Sum).Sum

if ($old.Count -gt 0) {
    # One record per line, streamed: `pipe` waits for the broker rather than drop a line, and
    # --detect-level turns the WARNING: prefix into the record's level.
    $old | Sort-Object Length -Descending | Select-Object -First 20 | ForEach-Object {
        'WARNING: old file {0} ({1:N0} KiB, last written {2:yyyy-MM-dd})' -f $_.FullName, ($_.Length / 1KB), $_.LastWriteTime
    } | & $kepmlog pipe --category Files --detect-level
    if ($LASTEXITCODE -ne 0) { Write-Warning "kepmlog pipe exited with status $LASTEXITCODE" }
}

Send-Event @{ phase = 'scan'; status = 'done'; files = $old.Count; bytes = $bytes }
$level = if ($old.Count -gt 0) { 'warning' } else { 'info' }
Send-Log $level Summary ('{0} file(s) older than {1} day(s), {2:N1} MiB, in {3}' -f $old.Count, $Days, ($bytes / 1MB), $Path)
# Old files are the report, not a failure of the task.
exit 0
