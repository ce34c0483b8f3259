#!/usr/bin/env node
// A KEPM job tool in Node.js: scans a directory tree for files that look like they hold
// secrets and reports counts and paths (never the secrets) to the agent's KeeperLogger
// through kepmlog. Job: examples/jobs/secret-scanner-node.json.
//
// Started by the agent as `secret-scanner-node --keeper-api-base=https://127.0.0.1:6889 [DIR]`
// with KEEPER_JOB_ID in its environment; Logger.fromJob() reads both.
import { readdir, stat, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Logger } from 'kepmlog';

// Markers of credentials that should not sit in plain files; only whether a file has one is reported.
const MARKERS = [
  '-----BEGIN RSA PRIVATE KEY-----',
  '-----BEGIN OPENSSH PRIVATE KEY-----',
  '-----BEGIN PRIVATE KEY-----',
  'AKIA',
  'password=',
  'secret_key',
];
const MAX_FILE_BYTES = 1024 * 1024;
const MAX_FILES = 20000;

/** The first argument that is not a --flag (or the value of --keeper-api-base), else ".". */
function scanRoot(argv) {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--keeper-api-base') i++;
    else if (!argv[i].startsWith('--')) return argv[i];
  }
  return '.';
}

async function collect(dir, out, log) {
  if (out.length >= MAX_FILES) return;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    log.warn('Access', `Cannot read ${dir}: ${e.code || e.message}`);
    return;
  }
  for (const entry of entries) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) await collect(p, out, log);
    else if (entry.isFile() && out.length < MAX_FILES) out.push(p);
  }
}

async function looksSecret(file) {
  const info = await stat(file);
  if (info.size > MAX_FILE_BYTES) return false;
  const text = await readFile(file, 'latin1');
  return MARKERS.some((m) => text.includes(m));
}

async function main() {
  let log;
  try {
    log = Logger.fromJob({ source: 'SecretScanner', defaultCategory: 'SecretsScan' });
  } catch (e) {
    console.error(`secret-scanner: cannot log to KEPM: ${e.message}`);
    return 2;
  }
  const root = scanRoot(process.argv.slice(2));
  log.info('Startup', `Scanning ${root} for plain-text secrets`);
  log.event({ phase: 'scan', status: 'started' });
  const files = [];
  await collect(root, files, log);
  let flagged = 0;
  for (const [n, file] of files.entries()) {
    try {
      if (await looksSecret(file)) {
        flagged++;
        log.warn('Finding', `Possible secret in ${file}`);
      }
    } catch (e) {
      log.debug('Access', `Skipped ${file}: ${e.code || e.message}`);
    }
    if ((n + 1) % 1000 === 0) log.event({ phase: 'scan', files: n + 1 });
  }
  const summary = `Scan complete: ${flagged} issue(s) detected in ${files.length} file(s).`;
  log.event({ phase: 'scan', status: 'done', files: files.length, issues: flagged });
  // Findings are the report, not a failure of the task: the exit code stays 0.
  if (flagged > 0) log.warn('', summary);
  else log.info('', summary);
  // Deliver everything before the agent records the exit code (the exit hook would too,
  // within 5 s; an explicit shutdown reports what could not be delivered).
  try {
    const undelivered = await log.shutdown(10000);
    if (undelivered > 0) console.error(`secret-scanner: ${undelivered} record(s) not delivered`);
  } catch (e) {
    console.error(`secret-scanner: ${e.message}`);
  }
  return 0;
}

process.exitCode = await main();
