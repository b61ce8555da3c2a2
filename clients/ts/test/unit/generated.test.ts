/** src/generated/openapi.ts is what `npm run generate` makes of docs/openapi.json now: regenerated and compared. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { promisify } from 'node:util';

import { PACKAGE_ROOT } from '../support/paths.js';

it('src/generated/openapi.ts is up to date with docs/openapi.json (else: npm run generate)', async () => {
  const directory = await mkdtemp(path.join(tmpdir(), 'crosslist-openapi-'));
  try {
    const output = path.join(directory, 'openapi.ts');
    // `npm run generate`'s own command, its output sent elsewhere.
    const manifest = JSON.parse(await readFile(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const [program, ...args] = (manifest.scripts['generate'] ?? '').split(/\s+/);
    assert.equal(program, 'openapi-typescript');
    const at = args.indexOf('-o');
    assert.equal(args[at + 1], 'src/generated/openapi.ts');
    args[at + 1] = output;
    const cli = path.join(PACKAGE_ROOT, 'node_modules', 'openapi-typescript', 'bin', 'cli.js');
    await promisify(execFile)(process.execPath, [cli, ...args], { cwd: PACKAGE_ROOT });
    const fresh = await readFile(output, 'utf8');
    const committed = await readFile(path.join(PACKAGE_ROOT, 'src', 'generated', 'openapi.ts'), 'utf8');
    assert.ok(fresh.includes('export interface paths'), 'the generator made types');
    assert.equal(committed, fresh, 'docs/openapi.json changed: run `npm run generate` in clients/ts');
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});
