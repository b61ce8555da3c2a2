/** docs/client.md shows the files of examples/ as they are (the integration tests run those files). */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';

import { PACKAGE_ROOT, REPO_ROOT } from '../support/paths.js';

const MARKER = /<!-- example: (clients\/ts\/examples\/[\w.-]+) -->\n```ts\n([\s\S]*?)```\n/g;

it('docs/client.md includes every example verbatim', () => {
  const document = readFileSync(path.join(REPO_ROOT, 'docs', 'client.md'), 'utf8');
  const shown = new Map<string, string>();
  for (const [, file, code] of document.matchAll(MARKER)) {
    assert.ok(file !== undefined && code !== undefined);
    assert.ok(!shown.has(file), `${file} is shown twice`);
    shown.set(file, code);
  }
  const examples = readdirSync(path.join(PACKAGE_ROOT, 'examples')).filter((name) => name.endsWith('.ts'));
  assert.deepEqual([...shown.keys()].sort(), examples.map((name) => `clients/ts/examples/${name}`).sort());
  for (const [file, code] of shown) {
    assert.equal(code, readFileSync(path.join(REPO_ROOT, file), 'utf8'), `docs/client.md's copy of ${file} differs`);
  }
});
