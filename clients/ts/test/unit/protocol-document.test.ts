/**
 * docs/websocket-protocol.md's tables are the protocol's one source of truth: SERVER_MESSAGES (and the types,
 * which the compiler holds to it) must name exactly the messages and fields they name. The backend's
 * builders are checked against the same tables by tests/unit/test_protocol_document.py.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { ACTIVE_JOB_FIELDS, CLIENT_MESSAGES, SERVER_MESSAGES } from '../../src/protocol.js';
import { REPO_ROOT } from '../support/paths.js';

const DOCUMENT = readFileSync(path.join(REPO_ROOT, 'docs', 'websocket-protocol.md'), 'utf8');

function section(title: string): string {
  const start = DOCUMENT.indexOf(`\n## ${title}\n`);
  assert.notEqual(start, -1, `no section "${title}"`);
  const end = DOCUMENT.indexOf('\n## ', start + 1);
  return DOCUMENT.slice(start, end === -1 ? undefined : end);
}

/** The text outside (nested) parentheses: an explanation of a field names no field of the message. */
function withoutParentheses(text: string): string {
  let depth = 0;
  let kept = '';
  for (const char of text) {
    if (char === '(') depth += 1;
    else if (char === ')') depth = Math.max(0, depth - 1);
    else if (depth === 0) kept += char;
  }
  return kept;
}

/** What the parentheses right after `name` say. */
function parenthesizedAfter(text: string, name: string): string {
  const start = text.indexOf(`\`${name}\` (`);
  assert.notEqual(start, -1, `no (…) after ${name}`);
  let depth = 0;
  for (let end = start + name.length + 3; end < text.length; end += 1) {
    if (text[end] === '(') depth += 1;
    if (text[end] === ')') depth -= 1;
    if (depth === 0) return text.slice(start + name.length + 4, end);
  }
  throw new Error(`unbalanced parentheses after ${name}`);
}

function names(text: string): string[] {
  return [...withoutParentheses(text).matchAll(/`([a-z_]+)`/g)].map((match) => match[1] as string);
}

function tableRows(text: string): string[][] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .map((line) =>
      line
        .trim()
        .replace(/^\||\|$/g, '')
        .split('|')
        .map((cell) => cell.trim()),
    );
}

function documentedServerMessages(): Record<string, string[]> {
  const table: Record<string, string[]> = {};
  for (const cells of tableRows(section('Backend → web app'))) {
    const [type, , fields] = cells;
    if (cells.length === 3 && type !== undefined && fields !== undefined && /^`[a-z_.]+`$/.test(type)) {
      table[type.slice(1, -1)] = names(fields);
    }
  }
  return table;
}

describe('docs/websocket-protocol.md', () => {
  it('lists exactly the messages and fields of SERVER_MESSAGES', () => {
    const documented = documentedServerMessages();
    assert.ok(Object.keys(documented).length >= 14, 'the table was found');
    const exported = Object.fromEntries(Object.entries(SERVER_MESSAGES).map(([type, fields]) => [type, [...fields].sort()]));
    const fromDocument = Object.fromEntries(Object.entries(documented).map(([type, fields]) => [type, [...fields].sort()]));
    assert.deepEqual(exported, fromDocument);
  });

  it('lists exactly the fields of ACTIVE_JOB_FIELDS for each job of jobs.active', () => {
    const row = section('Backend → web app')
      .split('\n')
      .find((line) => line.startsWith('| `jobs.active`'));
    assert.ok(row !== undefined);
    const listed = parenthesizedAfter(row, 'jobs');
    const fields = names(listed.slice(listed.indexOf(':') + 1));
    assert.deepEqual([...ACTIVE_JOB_FIELDS].sort(), fields.sort());
  });

  it('shows only the actions and fields of CLIENT_MESSAGES', () => {
    const block = section('Web app → backend').split('```json\n')[1]?.split('```')[0] ?? '';
    const examples = block
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line.replaceAll('{…}', '{}').replaceAll('…', '')) as Record<string, unknown>);
    assert.deepEqual(
      [...new Set(examples.map((example) => example['action']))].sort(),
      Object.keys(CLIENT_MESSAGES).sort(),
    );
    for (const example of examples) {
      const fields: readonly string[] = CLIENT_MESSAGES[example['action'] as keyof typeof CLIENT_MESSAGES];
      for (const key of Object.keys(example)) {
        if (key !== 'action') assert.ok(fields.includes(key), `${String(example['action'])}: ${key}`);
      }
    }
  });
});
