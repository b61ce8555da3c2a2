/**
 * The client against a real devstack (`crosslist dev up`, started here on free ports with its own data):
 * the examples of docs/client.md publish a product on Vinted through the relay; a socket killed mid-job and
 * the devstack restarted mid-job do not stop the job; a second tab runs no command.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';

import { openConnection } from '../../examples/connect.js';
import { explain, onClosedForGood } from '../../examples/errors.js';
import { apiClient, publishOnVinted } from '../../examples/http.js';
import { startRelay } from '../../examples/relay.js';
import { publishAndWatch } from '../../examples/watch.js';
import { CrosslistApiError, type HttpClient, type Schemas } from '../../src/http.js';
import type { PluginCommandMessage } from '../../src/protocol.js';
import { connect, type Connection, type SocketConstructor } from '../../src/realtime.js';
import type { Relay } from '../../src/relay.js';
import { Devstack } from '../support/devstack.js';
import { FakeVinted } from '../support/fake-vinted.js';

/** How long a job may take here. */
function jobTimeout(): { signal: AbortSignal } {
  return { signal: AbortSignal.timeout(60_000) };
}

/** What a test opened, closed after it whatever its outcome (an open connection would keep reconnecting). */
const opened: { close(): void }[] = [];

/** The ws package's WebSocket, remembering each socket so that a test can break one. */
function recordingWebSocket(): { WebSocket: SocketConstructor; sockets: WebSocket[] } {
  const sockets: WebSocket[] = [];
  class Recorded extends WebSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  }
  return { WebSocket: Recorded, sockets };
}

function product(stack: Devstack, title: string, photos = 2): Schemas['ProductCreate'] {
  return {
    title,
    price: '27.90',
    image_urls: Array.from({ length: photos }, (_, n) => `${stack.httpUrl}/__devstack/images/${n + 1}.png`),
    marketplace_attributes: { vinted: { catalog_id: 1839, status_id: 2, package_size_id: 2 } },
  };
}

/** A tab of the web app: the API, a connection, and (unless `extension` is false) the relay. */
class Tab {
  readonly log: string[] = [];
  readonly api: HttpClient;
  readonly connection: Connection;
  readonly relay: Relay | null;
  readonly vinted = new FakeVinted();
  readonly sockets: WebSocket[];
  readonly commands: PluginCommandMessage[] = [];
  /** Tokens the connection asked for. */
  tokens = 0;

  constructor(stack: Devstack, user: string, extension = true) {
    const recording = recordingWebSocket();
    this.sockets = recording.sockets;
    let apiToken: Promise<string> | null = null; // one for the HTTP calls; the connection asks a new one each time
    this.api = apiClient(stack.httpUrl, () => (apiToken ??= stack.token(user)));
    const getToken = (): Promise<string> => {
      this.tokens += 1;
      return stack.token(user);
    };
    const started = Date.now();
    const log = (line: string): void => void this.log.push(`${Date.now() - started} ms ${user}: ${line}`);
    this.connection = openConnection({ wsUrl: stack.wsUrl, getToken, api: this.api, WebSocket: recording.WebSocket, log });
    this.connection.on('plugin.command', (command) => this.commands.push(command));
    this.relay = extension
      ? startRelay(this.connection, this.vinted.call, { extensionVersion: 'test/1', vintedUserId: this.vinted.userId, log })
      : null;
    opened.push(this);
  }

  /** Resolves once the backend recorded that this tab takes commands. */
  ready(): Promise<void> {
    return new Promise((resolve) => {
      const off = this.relay?.on('status', (status) => {
        if (status.takes_commands) {
          off?.();
          resolve();
        }
      });
    });
  }

  opened(): Promise<void> {
    if (this.connection.state === 'open') return Promise.resolve();
    return new Promise((resolve) => {
      const off = this.connection.on('open', () => {
        off();
        resolve();
      });
    });
  }

  close(): void {
    this.relay?.stop();
    this.connection.close();
  }
}

describe('against a devstack', { skip: Devstack.available() ? false : 'no .venv/bin/crosslist: `make ts-test` creates it' }, () => {
  let stack: Devstack;

  before(async () => {
    stack = await Devstack.start();
  });

  afterEach(() => {
    for (const one of opened.splice(0)) one.close();
  });

  after(async () => {
    await stack?.dispose();
  });

  it('publishes on Vinted with the examples: product, relay, job watched to its end', async () => {
    const tab = new Tab(stack, 'ts-publish');
    await tab.ready();
    const end = await publishAndWatch(tab.api, tab.connection, product(stack, "Levi's 501"), (line) => tab.log.push(line));
    assert.equal(end.type, 'job.completed', tab.log.join('\n'));
    const [item] = [...tab.vinted.items.values()];
    assert.ok(item !== undefined);
    assert.equal(end.type === 'job.completed' && end.result['url'], item.url);
    assert.deepEqual(
      tab.vinted.calls.map((call) => `${call.method} ${call.path}`),
      ['POST /api/v2/photos', 'POST /api/v2/photos', 'POST /api/v2/item_upload/items'],
    );
    assert.ok(tab.log.some((line) => line.includes('step 2/3')), tab.log.join('\n'));
    assert.equal(tab.connection.jobs.get(String(end.job_id))?.status, 'completed');
  });

  it('is answered pong by the backend', async () => {
    const tab = new Tab(stack, 'ts-ping', false);
    await tab.opened();
    const pong = new Promise<void>((resolve) => tab.connection.on('pong', () => resolve()));
    assert.equal(tab.connection.send({ action: 'ping' }), true);
    await pong;
  });

  it('reconnects when its socket is killed mid-job, and the job finishes', async () => {
    const tab = new Tab(stack, 'ts-killed');
    await tab.ready();
    const lost: string[] = [];
    tab.relay?.on('command_lost', ({ command }) => lost.push(command.step));
    tab.vinted.before = (call, index) => {
      if (index === 1) tab.sockets[0]?.terminate(); // the network drops while the second photo uploads
    };
    const job = await publishOnVinted(tab.api, product(stack, 'Wool coat'));
    const end = await tab.connection.watchJob(job.id, jobTimeout());
    assert.equal(end.type, 'job.completed', tab.log.join('\n'));
    assert.deepEqual(lost, ['upload_photo_2']);
    assert.ok(tab.sockets.length >= 2);
    assert.ok(tab.tokens >= 2, 'a fresh token for the new socket');
    assert.equal(tab.vinted.items.size, 1, 'listed once');
    assert.equal((await tab.api.get('/jobs/{job_id}', { params: { job_id: job.id } })).status, 'completed');
  });

  it('runs no command in a second tab whose extension is not ready, nor in one without the relay', async () => {
    const runner = new Tab(stack, 'ts-tabs');
    await runner.ready();
    const bystander = new Tab(stack, 'ts-tabs', false);
    const idle = new Tab(stack, 'ts-tabs');
    idle.relay?.setStatus({ ready: false });
    await Promise.all([bystander.opened(), idle.opened()]);
    const progress: number[] = [];
    bystander.connection.on('job.progress', (message) => progress.push(message.current_step));

    const job = await publishOnVinted(runner.api, product(stack, 'Silk scarf', 1));
    const end = await bystander.connection.watchJob(job.id, jobTimeout()); // the other tabs see it end too
    assert.equal(end.type, 'job.completed', runner.log.join('\n'));
    assert.equal(runner.commands.length, 2);
    assert.deepEqual(bystander.commands, []);
    assert.deepEqual(idle.commands, []);
    assert.deepEqual(idle.vinted.calls, []);
    assert.deepEqual(progress, [1]);
  });

  it('turns the API’s refusals into CrosslistApiError', async () => {
    const api = apiClient(stack.httpUrl, () => stack.token('ts-errors'));
    const missing = await api
      .get('/jobs/{job_id}', { params: { job_id: '00000000-0000-4000-8000-000000000000' } })
      .catch((error: unknown) => error);
    assert.ok(missing instanceof CrosslistApiError);
    assert.equal(missing.status, 404);
    assert.equal(missing.code, 'not_found');
    assert.equal(explain(missing), 'It is gone (or it was never yours).');

    const invalid = await api.post('/products', { body: { title: '', price: '-1' } }).catch((error: unknown) => error);
    assert.ok(invalid instanceof CrosslistApiError);
    assert.equal(invalid.status, 422);
    assert.equal(invalid.code, 'invalid_request');
    assert.ok(Array.isArray(invalid.detail) && invalid.detail.length > 0);

    const anonymous = apiClient(stack.httpUrl, async () => 'not-a-token');
    const refused = await anonymous.get('/products').catch((error: unknown) => error);
    assert.ok(refused instanceof CrosslistApiError);
    assert.equal(refused.status, 401);
    assert.equal(explain(refused), 'Your session has ended: sign in again.');
  });

  it('stops for good when a 21st connection of the user closes it', async () => {
    const user = 'ts-crowd';
    const first = connect({ url: stack.wsUrl, getToken: () => stack.token(user), WebSocket });
    opened.push(first);
    const shown: string[] = [];
    onClosedForGood(first, (message) => shown.push(message));
    await new Promise<void>((resolve) => first.on('open', () => resolve()));
    const token = await stack.token(user);
    const others = Array.from({ length: 20 }, () => connect({ url: stack.wsUrl, getToken: () => token, WebSocket }));
    opened.push(...others);
    await new Promise<void>((resolve) => first.on('closed', () => resolve()));
    assert.equal(first.closeReason?.code, 'too_many_connections');
    assert.equal(shown.length, 1);
  });

  // Last: a restarted devstack's functions start cold.
  it('goes on when the devstack restarts mid-job', async () => {
    const tab = new Tab(stack, 'ts-restart');
    await tab.ready();
    let restarted: Promise<void> | null = null;
    tab.vinted.before = (call, index) => {
      if (index === 1) restarted = stack.restart(); // the backend goes away while the second photo uploads
    };
    const job = await publishOnVinted(tab.api, product(stack, 'Leather boots'));
    const end = await tab.connection.watchJob(job.id, jobTimeout()).finally(() => restarted);
    assert.equal(end.type, 'job.completed', `${tab.log.join('\n')}\n${stack.log.slice(-3000)}`);
    assert.ok(tab.log.some((line) => line.endsWith('connection: reconnecting')), tab.log.join('\n'));
    assert.equal(tab.vinted.items.size, 1, 'listed once');
  });
});
