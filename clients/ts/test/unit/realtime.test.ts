import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WebSocket as WsWebSocket } from 'ws';

import type { ActiveJob, JobFinalMessage } from '../../src/protocol.js';
import {
  backoffDelay,
  connect,
  ConnectionClosedError,
  type ConnectOptions,
  type Connection,
  type ConnectionState,
  type SocketConstructor,
} from '../../src/realtime.js';
import { FakeClock, settle } from '../support/fake-clock.js';
import { FakeBackend, type FakeSocket } from '../support/fake-socket.js';

const MINUTE = 60_000;

// The browser's WebSocket and the ws package's are both a SocketConstructor (checked by the compiler).
const browserSocketFits: typeof globalThis.WebSocket extends SocketConstructor ? true : never = true;
const wsSocketFits: typeof WsWebSocket extends SocketConstructor ? true : never = true;
void [browserSocketFits, wsSocketFits];

interface Harness {
  backend: FakeBackend;
  clock: FakeClock;
  connection: Connection;
  tokens: string[];
  states: ConnectionState[];
}

function start(options: Partial<ConnectOptions> = {}): Harness {
  const backend = new FakeBackend();
  const clock = new FakeClock();
  const tokens: string[] = [];
  const connection = connect({
    url: 'ws://backend.test/stage',
    getToken: () => {
      const token = `token-${tokens.length + 1}`;
      tokens.push(token);
      return token;
    },
    WebSocket: backend.WebSocket,
    clock,
    random: () => 0.5,
    ...options,
  });
  const states: ConnectionState[] = [];
  connection.on('state', (state) => states.push(state));
  return { backend, clock, connection, tokens, states };
}

async function opened(harness: Harness): Promise<FakeSocket> {
  const socket = await harness.backend.connecting();
  socket.open();
  await settle();
  return socket;
}

function activeJob(jobId: string, changes: Partial<ActiveJob> = {}): ActiveJob {
  return {
    job_id: jobId,
    marketplace: 'vinted',
    action: 'publish',
    product_id: 'p1',
    batch_id: null,
    status: 'running',
    wait_reason: null,
    wait_until: null,
    waiting_for_job_id: null,
    step: 'upload_photo_1',
    current_step: 0,
    total_steps: 3,
    attempts: 1,
    max_attempts: 3,
    cancel_requested: false,
    error: null,
    ...changes,
  };
}

describe('backoff', () => {
  it('waits random × min(cap, base × 2^attempt): full jitter under an exponential ceiling', () => {
    const ceilings = Array.from({ length: 10 }, (_, attempt) => backoffDelay(attempt, () => 1));
    assert.deepEqual(ceilings, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
    for (let attempt = 0; attempt < 12; attempt += 1) {
      assert.equal(backoffDelay(attempt, () => 0), 0); // full jitter reaches down to no wait at all
      const ceiling = Math.min(30_000, 500 * 2 ** attempt);
      for (const r of [0.01, 0.37, 0.999]) assert.equal(backoffDelay(attempt, () => r), r * ceiling);
    }
    assert.equal(backoffDelay(1000, () => 1), 30_000); // no overflow far out
    assert.equal(backoffDelay(3, () => 1, { baseMs: 100, capMs: 700 }), 700);
  });

  it('spaces failed attempts with the jittered delays, each within its bounds', async () => {
    const randoms = [0.9, 0.1, 0.75, 0.3, 0.99, 0.5, 0.2, 0.8, 0.6];
    let draws = 0;
    const harness = start({ random: () => randoms[draws++ % randoms.length] as number });
    const waited: number[] = [];
    harness.connection.on('connect_failed', (info) => waited.push(info.retryInMs));
    for (let attempt = 0; attempt < randoms.length; attempt += 1) {
      const socket = await harness.backend.next(attempt + 1);
      socket.refuse();
      await settle();
      const delay = harness.clock.nextIn();
      assert.equal(delay, waited[attempt]);
      const ceiling = Math.min(30_000, 500 * 2 ** attempt);
      assert.ok(delay !== undefined && delay >= 0 && delay < ceiling, `attempt ${attempt}: ${delay} of ${ceiling}`);
      assert.equal(delay, (randoms[attempt] as number) * ceiling);
      await harness.clock.advance(delay - 1);
      assert.equal(harness.backend.sockets.length, attempt + 1, 'not before its time');
      await harness.clock.advance(1);
    }
    assert.equal(harness.connection.state, 'reconnecting');
    harness.connection.close();
  });
});

describe('connecting', () => {
  it('asks a fresh token before every attempt and sends it in the URL', async () => {
    const harness = start();
    const first = await harness.backend.connecting();
    assert.equal(first.token, 'token-1');
    assert.equal(new URL(first.url).pathname, '/stage');
    first.refuse(); // e.g. 401: the token expired
    await harness.clock.runNext();
    const second = await harness.backend.connecting();
    assert.equal(second.token, 'token-2');
    second.open();
    second.drop(1001, 'going away');
    await harness.clock.runNext();
    assert.equal((await harness.backend.connecting()).token, 'token-3');
    assert.deepEqual(harness.tokens, ['token-1', 'token-2', 'token-3']);
    harness.connection.close();
  });

  it('uses a token that expired mid-session no more: the next socket has the new one', async () => {
    let expiresAt = 30 * MINUTE;
    let minted = 0;
    const clock = new FakeClock();
    const asked: number[] = [];
    const harness = start({
      clock,
      getToken: async () => {
        asked.push(clock.now());
        minted += 1;
        const token = `jwt-${minted}-exp-${expiresAt}`;
        expiresAt = clock.now() + 30 * MINUTE;
        return token;
      },
    });
    const first = await opened(harness);
    assert.equal(first.token, 'jwt-1-exp-1800000');
    await clock.advance(31 * MINUTE); // the token expired; the socket lives on until something closes it
    first.drop(1006);
    await clock.runNext();
    const second = await harness.backend.connecting();
    assert.match(second.token ?? '', /^jwt-2-/);
    assert.equal(asked.length, 2);
    assert.ok((asked[1] as number) > 31 * MINUTE);
    second.open();
    harness.connection.close();
  });

  it('keeps trying when getToken fails, with the same backoff', async () => {
    let calls = 0;
    const harness = start({
      getToken: () => {
        calls += 1;
        if (calls < 3) throw new Error('signed out for now');
        return 'fresh';
      },
    });
    await settle();
    assert.equal(harness.backend.sockets.length, 0);
    await harness.clock.runNext();
    await harness.clock.runNext();
    assert.equal((await harness.backend.connecting()).token, 'fresh');
    harness.connection.close();
  });

  it('reconnects 50 times in a row, the delay starting over after each open', async () => {
    const harness = start({ random: () => 0.999 });
    const opens: boolean[] = [];
    harness.connection.on('open', (_socket, info) => opens.push(info.reconnected));
    for (let round = 1; round <= 50; round += 1) {
      const socket = await harness.backend.next(round);
      assert.equal(socket.token, `token-${round}`);
      socket.open();
      assert.equal(harness.connection.state, 'open');
      socket.drop(1006, 'network');
      assert.equal(harness.connection.state, 'reconnecting');
      const delay = harness.clock.nextIn() ?? Infinity;
      assert.ok(delay < 500, `round ${round}: ${delay} ms: the attempt count starts over after an open`);
      await harness.clock.advance(delay);
    }
    assert.equal(opens.length, 50);
    assert.deepEqual(opens.slice(0, 2), [false, true]);
    assert.deepEqual(harness.states.slice(0, 4), ['open', 'reconnecting', 'open', 'reconnecting']);
    harness.connection.close();
    assert.equal(harness.connection.state, 'closed');
  });

  it('gives up an attempt that does not open in time', async () => {
    const harness = start({ connectTimeoutMs: 10_000 });
    const first = await harness.backend.connecting();
    await harness.clock.advance(10_000);
    assert.deepEqual(first.closeCode, 4000);
    await harness.clock.runNext();
    (await harness.backend.next(2)).open();
    assert.equal(harness.connection.state, 'open');
    harness.connection.close();
  });

  it('stops for good on close(): no socket is opened again', async () => {
    const harness = start();
    const socket = await opened(harness);
    const reasons: string[] = [];
    harness.connection.on('closed', (reason) => reasons.push(reason.code));
    harness.connection.close();
    await settle();
    assert.equal(harness.connection.state, 'closed');
    assert.equal(socket.closeCode, 1000);
    await harness.clock.advance(10 * MINUTE);
    assert.equal(harness.backend.sockets.length, 1);
    assert.deepEqual(reasons, ['closed']);
    assert.equal(harness.connection.send({ action: 'ping' }), false);
  });

  it('does not reconnect after too_many_connections: it would close the next oldest tab', async () => {
    const harness = start();
    const socket = await opened(harness);
    socket.receive({ type: 'error', code: 'too_many_connections', message: 'more than 20 connections', request_id: null });
    socket.drop(1000);
    await harness.clock.advance(10 * MINUTE);
    assert.equal(harness.backend.sockets.length, 1);
    assert.equal(harness.connection.state, 'closed');
    assert.deepEqual(harness.connection.closeReason, {
      code: 'too_many_connections',
      message: 'more than 20 connections',
    });
  });
});

describe('keeping the socket open', () => {
  it('pings when nothing was sent for 5 minutes, counted from the last message sent', async () => {
    const harness = start();
    const socket = await opened(harness);
    await harness.clock.advance(5 * MINUTE - 1);
    assert.equal(socket.sentOf('ping').length, 0);
    await harness.clock.advance(1);
    assert.equal(socket.sentOf('ping').length, 1);
    await harness.clock.advance(3 * MINUTE);
    harness.connection.resume(); // something else was sent: the next ping waits 5 minutes from here
    await harness.clock.advance(5 * MINUTE - 1);
    assert.equal(socket.sentOf('ping').length, 1);
    await harness.clock.advance(1);
    assert.equal(socket.sentOf('ping').length, 2);
    await harness.clock.advance(60 * MINUTE);
    assert.equal(socket.sentOf('ping').length, 14);
    assert.equal(harness.backend.sockets.length, 1);
    harness.connection.close();
  });

  it('replaces a socket that does not answer its ping', async () => {
    const harness = start({ pongTimeoutMs: 30_000 });
    const socket = await opened(harness);
    socket.autoPong = false;
    await harness.clock.advance(5 * MINUTE + 30_000);
    assert.equal(socket.closeCode, 4000);
    assert.equal(harness.connection.state, 'reconnecting');
    await harness.clock.runNext();
    (await harness.backend.next(2)).open();
    assert.equal(harness.connection.state, 'open');
    harness.connection.close();
  });

  it('opens a new socket at 110 minutes and closes the old one only once the new one is open', async () => {
    const harness = start();
    const old = await opened(harness);
    const events: string[] = [];
    harness.connection.on('open', (socket, info) => events.push(`open ${socket.id} replacing=${info.replacing}`));
    harness.connection.on('socket_closed', (socket, info) => events.push(`closed ${socket.id} current=${info.current}`));
    await harness.clock.advance(110 * MINUTE - 1);
    assert.equal(harness.backend.sockets.length, 1);
    await harness.clock.advance(1);
    const fresh = await harness.backend.next(2);
    assert.equal(fresh.token, 'token-2');
    assert.equal(old.closeCode, undefined, 'the old one stays until the new one is open');
    assert.equal(harness.connection.socket?.id, 1);
    fresh.open();
    await settle();
    assert.equal(old.closeCode, 1000);
    assert.equal(harness.connection.socket?.id, 2);
    assert.deepEqual(events, ['open 2 replacing=true', 'closed 1 current=false']);
    assert.deepEqual(harness.states, ['open'], 'never anything but open');
    await harness.clock.advance(110 * MINUTE); // and again
    (await harness.backend.next(3)).open();
    await settle();
    assert.equal(fresh.closeCode, 1000);
    harness.connection.close();
  });

  it('keeps a replaced socket open while a command it carries runs', async () => {
    const harness = start();
    const old = await opened(harness);
    const release = harness.connection.socket?.hold();
    await harness.clock.advance(110 * MINUTE);
    (await harness.backend.next(2)).open();
    await settle();
    assert.equal(old.closeCode, undefined);
    assert.equal(old.readyState, 1);
    release?.();
    await settle();
    assert.equal(old.closeCode, 1000);
    harness.connection.close();
  });

  it('retries a replacement that fails, on the old socket meanwhile', async () => {
    const harness = start();
    const old = await opened(harness);
    await harness.clock.advance(110 * MINUTE);
    (await harness.backend.next(2)).refuse();
    await settle();
    assert.equal(harness.connection.state, 'open');
    assert.equal(harness.connection.socket?.id, 1);
    await harness.clock.runNext();
    (await harness.backend.next(3)).open();
    await settle();
    assert.equal(old.closeCode, 1000);
    assert.equal(harness.connection.socket?.id, 3);
    harness.connection.close();
  });
});

describe('the job store', () => {
  it('is rebuilt from jobs.active after every reconnect (sent by the backend on connect: no resume)', async () => {
    const harness = start();
    const first = await opened(harness);
    first.receive({ type: 'jobs.active', jobs: [activeJob('a'), activeJob('b', { status: 'pending' })], truncated: false });
    first.receive({
      type: 'job.progress',
      job_id: 'a',
      batch_id: null,
      step: 'upload_photo_1',
      current_step: 1,
      total_steps: 3,
      message: 'photo 1 uploaded',
    });
    assert.deepEqual([...harness.connection.jobs.keys()], ['a', 'b']);
    assert.equal(harness.connection.jobs.get('a')?.current_step, 1);
    assert.equal(harness.connection.jobs.get('a')?.message, 'photo 1 uploaded');

    first.drop();
    await harness.clock.runNext();
    const second = await opened(harness);
    second.receive({ type: 'jobs.active', jobs: [activeJob('b', { status: 'running', current_step: 2 })], truncated: false });

    assert.deepEqual([...harness.connection.jobs.keys()], ['b'], 'replaced, not merged');
    assert.equal(harness.connection.jobs.get('b')?.current_step, 2);
    assert.equal(second.sentOf('resume').length, 0);
    assert.equal(first.sentOf('resume').length, 0);
    harness.connection.close();
  });

  it('follows each job message', async () => {
    const harness = start();
    const socket = await opened(harness);
    const at = '2030-06-03T09:15:00+00:00';
    socket.receive({ type: 'job.waiting', job_id: 'j', reason: 'no_plugin', until: null });
    assert.equal(harness.connection.jobs.get('j')?.status, 'waiting_for_plugin');
    socket.receive({
      type: 'plugin.command',
      request_id: 'r1',
      job_id: 'j',
      step: 'upload_photo_1',
      method: 'POST',
      path: '/api/v2/photos',
      payload: {},
      timeout_ms: 60_000,
    });
    assert.equal(harness.connection.jobs.get('j')?.status, 'running');
    socket.receive({ type: 'job.retrying', job_id: 'j', attempt: 2, next_attempt_at: at, error: { code: 'x', message: 'y' } });
    assert.deepEqual(
      ((job) => [job?.status, job?.wait_reason, job?.wait_until, job?.attempts])(harness.connection.jobs.get('j')),
      ['waiting', 'backoff', at, 1],
    );
    socket.receive({ type: 'job.waiting', job_id: 'j', reason: 'rate_limited', until: at });
    assert.equal(harness.connection.jobs.get('j')?.wait_reason, 'rate_limited');
    socket.receive({ type: 'job.completed', job_id: 'j', result: { url: 'https://vinted.test/1' } });
    assert.equal(harness.connection.jobs.get('j')?.status, 'completed');
    assert.deepEqual(harness.connection.jobs.get('j')?.result, { url: 'https://vinted.test/1' });
    socket.receive({ type: 'job.cancelled', job_id: 'k' });
    assert.equal(harness.connection.jobs.get('k')?.status, 'cancelled');
    harness.connection.close();
  });

  it('shows a command’s progress as job.progress, once even when it also comes on its own', async () => {
    const harness = start();
    const socket = await opened(harness);
    const progress: number[] = [];
    harness.connection.on('job.progress', (message) => progress.push(message.current_step));
    const step = { type: 'job.progress', job_id: 'j', batch_id: null, step: 'upload_photo_1', current_step: 1, total_steps: 2, message: 'm' };
    socket.receive({
      type: 'plugin.command',
      request_id: 'r2',
      job_id: 'j',
      step: 'create_item',
      method: 'POST',
      path: '/api/v2/item_upload/items',
      payload: {},
      timeout_ms: 60_000,
      progress: step,
    });
    socket.receive(step);
    assert.deepEqual(progress, [1]);
    harness.connection.close();
  });

  it('reports frames that are not messages of the protocol and goes on', async () => {
    const harness = start();
    const socket = await opened(harness);
    const invalid: unknown[] = [];
    harness.connection.on('invalid_frame', (data) => invalid.push(data));
    socket.receive('{not json');
    socket.receive({ type: 'from.the.future' });
    socket.receive('[1]');
    socket.receive({ type: 'job.cancelled', job_id: 'j' });
    assert.equal(invalid.length, 3);
    assert.equal(harness.connection.jobs.get('j')?.status, 'cancelled');
    harness.connection.close();
  });
});

describe('watchJob', () => {
  it('settles on completed, never on job.retrying', async () => {
    const harness = start();
    const socket = await opened(harness);
    let settled: JobFinalMessage | null = null;
    const watching = harness.connection.watchJob('j').then((end) => (settled = end));
    socket.receive({ type: 'job.retrying', job_id: 'j', attempt: 2, next_attempt_at: '2030-01-01T00:00:00Z', error: { code: 'plugin_timeout', message: 'late' } });
    socket.receive({ type: 'job.waiting', job_id: 'j', reason: 'backoff', until: '2030-01-01T00:00:00Z' });
    await settle();
    assert.equal(settled, null);
    socket.receive({ type: 'job.completed', job_id: 'j', result: { item_id: '1' } });
    await watching;
    assert.deepEqual(settled, { type: 'job.completed', job_id: 'j', result: { item_id: '1' } });
    harness.connection.close();
  });

  it('settles on failed and cancelled, at once for a job already ended', async () => {
    const harness = start();
    const socket = await opened(harness);
    const failing = harness.connection.watchJob('f');
    socket.receive({ type: 'job.failed', job_id: 'f', error: { code: 'vinted_refused', message: 'no' } });
    assert.equal((await failing).type, 'job.failed');
    socket.receive({ type: 'job.cancelled', job_id: 'c' });
    assert.deepEqual(await harness.connection.watchJob('c'), { type: 'job.cancelled', job_id: 'c' });
    assert.equal((await harness.connection.watchJob('f')).type, 'job.failed');
    harness.connection.close();
  });

  it('asks fetchJob about a watched job that jobs.active no longer lists after a reconnect', async () => {
    const asked: string[] = [];
    let status = 'running';
    const harness = start({
      fetchJob: async (jobId) => {
        asked.push(jobId);
        return { status, result: { item_id: '9' } };
      },
    });
    const first = await opened(harness);
    first.receive({ type: 'jobs.active', jobs: [activeJob('j')], truncated: false });
    const watching = harness.connection.watchJob('j');
    await settle();
    assert.deepEqual(asked, ['j']); // once when the watch begins: still running
    first.drop();
    status = 'completed'; // it ended while no socket was open: its job.completed went nowhere
    await harness.clock.runNext();
    const second = await opened(harness);
    second.receive({ type: 'jobs.active', jobs: [], truncated: false });
    assert.deepEqual(await watching, { type: 'job.completed', job_id: 'j', result: { item_id: '9' } });
    assert.equal(harness.connection.jobs.get('j')?.status, 'completed');
    harness.connection.close();
  });

  it('rejects when the connection closes or the signal aborts', async () => {
    const harness = start();
    await opened(harness);
    const controller = new AbortController();
    const aborted = harness.connection.watchJob('a', { signal: controller.signal });
    controller.abort(new Error('no longer shown'));
    await assert.rejects(aborted, /no longer shown/);
    const closing = harness.connection.watchJob('b');
    harness.connection.close();
    await assert.rejects(closing, ConnectionClosedError);
    await assert.rejects(harness.connection.watchJob('c'), ConnectionClosedError);
  });
});

describe('events', () => {
  it('are typed per message, unsubscribe, and a throwing handler does not stop the others', async () => {
    const errors: unknown[] = [];
    const harness = start({ onHandlerError: (error) => errors.push(error) });
    const socket = await opened(harness);
    const seen: string[] = [];
    harness.connection.on('listing.sold', () => {
      throw new Error('a broken view');
    });
    const off = harness.connection.on('listing.sold', (message) => seen.push(`${message.marketplace}:${message.price}`));
    const sold = { type: 'listing.sold', marketplace: 'ebay', product_id: 'p', external_id: '1', order_id: 'o', price: '10.00', currency: 'EUR' };
    socket.receive(sold);
    off();
    socket.receive(sold);
    assert.deepEqual(seen, ['ebay:10.00']);
    assert.equal(errors.length, 2);
    harness.connection.close();
  });
});
