<#
.SYNOPSIS
  KEPM job task in PowerShell, run under `kepmlog run`: reports the files older than -Days in
  a folder (default: the service account's TEMP) to the agent's KeeperLogger. Deletes nothing.

.DESCRIPTION
  The agent starts kepmlog.exe as the task (temp-report.json), and kepmlog starts this
  script:
    kepmlog.exe run --keeper-api-base=https://127.0.0.1:6889 --source TempReport -- powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File "C:\...\temp-report.ps1" -Days 30
  kepmlog is the process the runner started, so the agent trusts it without a signature;
  this script only writes lines. Each stdout line is an Info record, each stderr line a
  Warning; a line in kepmlog's protocol sets the level and category or sends an event
  (cli/README.md). The lines are single-quoted or built as strings: no quoting traps, as no
  JSON is ever passed as a native program's argument. Works in Windows PowerShell 5.1 and
  PowerShell 7.
#>
param(
    [string]$Path = $env:TEMP,
    [int]$Days = 30
)

# One protocol line per call. Property values are percent-encoded where they would hold
# `%`, `,`, `:` or `=`; the message after the closing :: is free text.
function Send-Log([string]$Level, [string]$Category, [string]$Message) {
    Write-Output ('::{0} category={1}::{2}' -f $Level, $Category, $Message)
}

function Send-Event([hashtable]$Fields) {
    Write-Output ('::event::' + ($Fields | ConvertTo-Json -Compress))
}

Send-Log info Startup "Looking for files older than $Days day(s) in $Path"
Send-Event @{ phase = 'scan'; status = 'started' }

$cutoff = (Get-Date).AddDays(-$Days)
$old = @(Get-ChildItem -LiteralPath $Path -File -Recurse -Force -ErrorAction SilentlyContinue |
    Where-Object { $_.LastWriteTime -lt $cutoff })
$bytes = [long]($old | Measure-Object -Property Length -Sum).Sum

$old | Sort-Object Length -Descending | Select-Object -First 20 | ForEach-Object {
    Send-Log warning Files ('old file {0} ({1:N0} KiB, last written {2:yyyy-MM-dd})' -f $_.FullName, ($_.Length / 1KB), $_.LastWriteTime)
}

Send-Event @{ phase = 'scan'; status = 'done'; files = $old.Count; bytes = $bytes }
$level = if ($old.Count -gt 0) { 'warning' } else { 'info' }
Send-Log $level Summary ('{0} file(s) older than {1} day(s), {2:N1} MiB, in {3}' -f $old.Count, $Days, ($bytes / 1MB), $Path)
# Old files are the report, not a failure of the task; kepmlog exits with this code.
exit 0
