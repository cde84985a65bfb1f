// The npm package: `npm pack` in web/pkg, install the tarball into a scratch project, import it
// in Node (no WebGPU needed for that).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ROOT } from './helpers.mjs';

const PKG = join(ROOT, 'web/pkg');
const built = existsSync(join(PKG, 'package.json'));
const npm = (args, cwd) =>
  execFileSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } });

describe('npm package', { skip: built ? false : 'web/pkg is not built (run web/build.sh)' }, () => {
  const scratch = mkdtempSync(join(tmpdir(), 'blockdiff-pack-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));
  let tarball;

  test('package.json is complete', () => {
    const pkg = JSON.parse(readFileSync(join(PKG, 'package.json'), 'utf8'));
    const cargo = readFileSync(join(ROOT, 'Cargo.toml'), 'utf8').match(/^version = "([^"]+)"/m)[1];
    assert.equal(pkg.name, 'blockdiff');
    assert.equal(pkg.version, cargo);
    assert.equal(pkg.type, 'module');
    assert.equal(pkg.types, './index.d.ts');
    assert.equal(pkg.exports['.'].default, './index.js');
    for (const f of pkg.files) assert.ok(existsSync(join(PKG, f)), `${f} is listed and exists`);
  });

  test('npm pack holds the wasm, the JS and the types', () => {
    const out = JSON.parse(npm(['pack', '--json', '--pack-destination', scratch], PKG));
    const files = out[0].files.map((f) => f.path).sort();
    for (const f of ['package.json', 'index.js', 'index.d.ts', 'blockdiff_core.js', 'blockdiff_core_bg.wasm', 'README.md']) {
      assert.ok(files.includes(f), `${f} in the tarball (${files.join(', ')})`);
    }
    tarball = join(scratch, out[0].filename);
    assert.ok(existsSync(tarball));
  });

  test('the tarball installs and imports in Node', () => {
    assert.ok(tarball, 'packed');
    const app = join(scratch, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    npm(['install', '--offline', '--no-save', '--ignore-scripts', tarball], app);
    const script = `
      import { BlockDiff } from 'blockdiff';
      import def from 'blockdiff';
      import * as core from 'blockdiff/core';
      const r = {
        blockDiff: typeof BlockDiff,
        isDefault: def === BlockDiff,
        load: typeof BlockDiff.load,
        supported: BlockDiff.isSupported(),
        coreLoad: typeof core.loadSession,
        coreInit: typeof core.default,
      };
      r.noGpu = await BlockDiff.load({ baseUrl: 'http://127.0.0.1:9/' }).then(() => null, (e) => [e instanceof Error, e.code]);
      console.log(JSON.stringify(r));`;
    const out = JSON.parse(execFileSync('node', ['--input-type=module', '-e', script], { cwd: app, encoding: 'utf8' }).trim());
    assert.deepEqual(out, {
      blockDiff: 'function',
      isDefault: true,
      load: 'function',
      supported: false,
      coreLoad: 'function',
      coreInit: 'function',
      noGpu: [true, 'no-webgpu'],
    });
    assert.ok(existsSync(join(app, 'node_modules/blockdiff/blockdiff_core_bg.wasm')));
    assert.ok(readFileSync(join(app, 'node_modules/blockdiff/index.d.ts'), 'utf8').includes('static load('));
  });
});
