#!/usr/bin/env node
// npm `install` script: builds the addon with plain cargo and copies it to kepmlog.node.
//
// A consumer's `npm install ./bindings/node` does not install devDependencies, so nothing
// here may need @napi-rs/cli. npm may symlink the folder (the default) or copy it
// (install-links): the cargo workspace is looked up from the package's real path; a copied
// package without a reachable workspace uses the kepmlog.node it was packed with.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const pkgDir = fs.realpathSync(path.resolve(__dirname, '..'));
const out = path.join(pkgDir, 'kepmlog.node');

function fail(msg) {
  console.error(`kepmlog: ${msg}`);
  process.exit(1);
}

function findWorkspace(start) {
  const explicit = process.env.KEPMLOG_SOURCE_DIR;
  if (explicit) {
    const root = path.resolve(explicit);
    if (!fs.existsSync(path.join(root, 'bindings', 'node', 'Cargo.toml'))) {
      fail(`KEPMLOG_SOURCE_DIR=${explicit} is not the kepmlog workspace (no bindings/node/Cargo.toml)`);
    }
    return root;
  }
  for (let dir = start; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'Cargo.toml');
    if (fs.existsSync(manifest) && /^\s*\[workspace\]/m.test(fs.readFileSync(manifest, 'utf8'))
        && fs.existsSync(path.join(dir, 'bindings', 'node', 'Cargo.toml'))) {
      return dir;
    }
    if (path.dirname(dir) === dir) return null;
  }
}

function libName() {
  switch (process.platform) {
    case 'win32': return 'kepmlog_node.dll';
    case 'darwin': return 'libkepmlog_node.dylib';
    default: return 'libkepmlog_node.so';
  }
}

const root = findWorkspace(pkgDir);
if (!root) {
  if (fs.existsSync(out)) {
    console.error('kepmlog: no cargo workspace next to this copy; using the packed kepmlog.node');
    process.exit(0);
  }
  fail('cannot find the kepmlog cargo workspace above ' + pkgDir + ' and no prebuilt kepmlog.node: ' +
       'install from a checkout (npm install ./bindings/node) or set KEPMLOG_SOURCE_DIR to it');
}

const profile = process.env.KEPMLOG_CARGO_PROFILE || 'release';
if (!/^[A-Za-z0-9_-]+$/.test(profile)) fail(`KEPMLOG_CARGO_PROFILE=${profile} is not a cargo profile name`);
const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(root, process.env.CARGO_TARGET_DIR)
  : path.join(root, 'target');
const cargo = process.env.CARGO || 'cargo';
// KEPMLOG_CARGO_FEATURES (the test suite's): build the whole workspace with these features, as
// `cargo build --workspace --features ...` already did, so cargo resolves the same features
// and finds the addon built; `-p kepmlog-node` alone resolves them anew and rebuilds the
// dependencies the addon shares with the devagent.
const features = process.env.KEPMLOG_CARGO_FEATURES;
if (features !== undefined && !/^[A-Za-z0-9_\-/,]*$/.test(features)) {
  fail(`KEPMLOG_CARGO_FEATURES=${features} is not a cargo feature list`);
}
const args = features === undefined
  ? ['build', '--profile', profile, '-p', 'kepmlog-node']
  : ['build', '--profile', profile, '--workspace', '--features', features];
// Opt-in only: a checkout whose Cargo.lock lags its manifests should still install.
if (process.env.KEPMLOG_CARGO_LOCKED === '1') args.push('--locked');
console.error(`kepmlog: ${cargo} ${args.join(' ')} (in ${root}, target ${targetDir})`);
const r = spawnSync(cargo, args, {
  cwd: root,
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, CARGO_TARGET_DIR: targetDir },
});
if (r.error) {
  fail(r.error.code === 'ENOENT'
    ? 'cargo not found: install Rust (https://rustup.rs) and run npm install again'
    : `cannot run cargo: ${r.error.message}`);
}
if (r.status !== 0) fail(`cargo build failed (exit ${r.status})`);

const dirName = profile === 'dev' ? 'debug' : profile;
const built = path.join(targetDir, dirName, libName());
if (!fs.existsSync(built)) fail(`cargo did not produce ${built}`);
// Copy to a temp name first: a process still using the old addon keeps its mapping intact.
const tmp = `${out}.${process.pid}.tmp`;
fs.copyFileSync(built, tmp);
fs.renameSync(tmp, out);
console.error(`kepmlog: built ${out}`);
