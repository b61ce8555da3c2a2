import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { PluginCommandMessage } from '../../src/protocol.js';
import { connect, type Connection } from '../../src/realtime.js';
import {
  relay,
  resultMessage,
  type Executor,
  type ExecutorContext,
  type ExecutorResult,
  type RelayOptions,
  type StorageLike,
} from '../../src/relay.js';
import { FakeClock, settle } from '../support/fake-clock.js';
import { FakeBackend, type FakeSocket } from '../support/fake-socket.js';

const MINUTE = 60_000;

function command(requestId: string, changes: Partial<PluginCommandMessage> = {}): PluginCommandMessage {
  return {
    type: 'plugin.command',
    request_id: requestId,
    job_id: 'job-1',
    step: 'upload_photo_1',
    method: 'POST',
    path: '/api/v2/photos',
    payload: { image_url: 'https://images.test/1.jpg', photo: { type: 'item', temp_uuid: 'job-1' } },
    timeout_ms: 60_000,
    ...changes,
  };
}

/** An executor whose calls the test finishes when it wants. */
class ScriptedExecutor {
  readonly calls: { command: PluginCommandMessage; context: ExecutorContext; finish: (result: ExecutorResult) => void }[] = [];

  readonly run: Executor = (command, context) =>
    new Promise<ExecutorResult>((resolve) => {
      this.calls.push({ command, context, finish: resolve });
    });

  finish(index: number, result: ExecutorResult): void {
    const call = this.calls[index];
    if (call === undefined) throw new Error(`no call ${index}`);
    call.finish(result);
  }
}

class MemoryStorage implements StorageLike {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
}

async function setUp(options: Partial<RelayOptions> = {}, executor: Executor = () => ({ success: true, result: { id: 1 } })) {
  const backend = new FakeBackend();
  const clock = new FakeClock();
  const connection: Connection = connect({ url: 'ws://backend.test', getToken: () => 't', WebSocket: backend.WebSocket, clock, random: () => 0.5 });
  const bridge = relay(connection, executor, { extensionVersion: '1.4.2', clock, ...options });
  const socket = await backend.connecting();
  socket.open();
  await settle();
  return { backend, clock, connection, bridge, socket };
}

function results(socket: FakeSocket): Record<string, unknown>[] {
  return socket.sentOf('plugin_result');
}

describe('relay', () => {
  it('says the extension is ready on every socket, after each reconnect too', async () => {
    const { backend, clock, connection, socket } = await setUp({ vintedUserId: '123' });
    assert.deepEqual(socket.sentOf('plugin_status'), [
      {
        action: 'plugin_status',
        ready: true,
        extension_version: '1.4.2',
        vinted_logged_in: true,
        challenge: false,
        vinted_user_id: '123',
      },
    ]);
    socket.drop();
    await clock.runNext();
    const second = await backend.connecting();
    second.open();
    assert.equal(second.sentOf('plugin_status').length, 1);
    await clock.advance(110 * MINUTE); // the replacement says so before the old socket closes
    const third = await backend.connecting();
    third.open();
    assert.equal(third.sentOf('plugin_status').length, 1);
    connection.close();
  });

  it('runs a command and answers it on its socket with the executor’s result, field for field', async () => {
    const executor = new ScriptedExecutor();
    const { connection, socket } = await setUp({}, executor.run);
    socket.receive(command('r1'));
    await settle();
    assert.equal(executor.calls.length, 1);
    assert.equal(executor.calls[0]?.command.request_id, 'r1');
    assert.equal(executor.calls[0]?.context.socket.id, 1);
    executor.finish(0, { success: true, result: { id: 9001 }, status: 200 });
    await settle();
    assert.deepEqual(results(socket), [
      { action: 'plugin_result', request_id: 'r1', success: true, result: { id: 9001 }, status: 200 },
    ]);
    connection.close();
  });

  it('answers failures with Vinted’s status, Retry-After and the photo’s fields', () => {
    assert.deepEqual(resultMessage('r', { success: false, error: 'slow down', status: 429, retry_after: 60 }), {
      action: 'plugin_result',
      request_id: 'r',
      success: false,
      error: 'slow down',
      status: 429,
      retry_after: 60,
    });
    assert.deepEqual(
      resultMessage('r', {
        success: false,
        error: 'could not download image: HTTP 404',
        error_kind: 'image',
        image_url: 'https://images.test/gone.jpg',
        image_status: 404,
        image_error: null,
      }),
      {
        action: 'plugin_result',
        request_id: 'r',
        success: false,
        error: 'could not download image: HTTP 404',
        error_kind: 'image',
        image_url: 'https://images.test/gone.jpg',
        image_status: 404,
      },
    );
    const long = resultMessage('r', { success: false, error: 'x'.repeat(5000) });
    assert.equal(long.error?.length, 2000);
  });

  it('runs a command delivered twice once, even across a reload (sessionStorage)', async () => {
    const storage = new MemoryStorage();
    const executor = new ScriptedExecutor();
    const { connection, bridge, socket } = await setUp({ sessionStorage: storage }, executor.run);
    const duplicates: string[] = [];
    bridge.on('duplicate', (repeated) => duplicates.push(repeated.request_id));
    socket.receive(command('r1'));
    socket.receive(command('r1')); // while it runs
    await settle();
    executor.finish(0, { success: true, result: { id: 1 } });
    await settle();
    socket.receive(command('r1')); // once answered
    await settle();
    assert.equal(executor.calls.length, 1);
    assert.deepEqual(duplicates, ['r1', 'r1']);
    assert.equal(results(socket).length, 1);
    bridge.stop();
    connection.close();

    // The tab reloads: a new connection and relay, the same sessionStorage.
    const reloaded = await setUp({ sessionStorage: storage }, executor.run);
    reloaded.socket.receive(command('r1'));
    reloaded.socket.receive(command('r2'));
    await settle();
    assert.deepEqual(
      executor.calls.map((call) => call.command.request_id),
      ['r1', 'r2'],
    );
    reloaded.connection.close();
  });

  it('aborts a command at its timeout_ms and does not answer it', async () => {
    const executor = new ScriptedExecutor();
    const { clock, connection, bridge, socket } = await setUp({}, executor.run);
    const timeouts: string[] = [];
    bridge.on('timeout', (late) => timeouts.push(late.request_id));
    socket.receive(command('r1', { timeout_ms: 20_000 }));
    await settle();
    const signal = executor.calls[0]?.context.signal;
    await clock.advance(19_999);
    assert.equal(signal?.aborted, false);
    await clock.advance(1);
    assert.equal(signal?.aborted, true);
    assert.equal((signal?.reason as Error).name, 'TimeoutError');
    assert.deepEqual(timeouts, ['r1']);
    executor.finish(0, { success: true, result: { id: 1 } }); // too late
    await settle();
    assert.deepEqual(results(socket), []);
    assert.equal(bridge.running, 0);
    connection.close();
  });

  it('never answers on a new socket: a command whose socket closed is reported lost', async () => {
    const executor = new ScriptedExecutor();
    const { backend, clock, connection, bridge, socket } = await setUp({}, executor.run);
    const lost: string[] = [];
    bridge.on('command_lost', ({ command: gone, socket: on }) => lost.push(`${gone.request_id}@${on.id}`));
    socket.receive(command('r1'));
    await settle();
    socket.drop(1006);
    await clock.runNext();
    const second = await backend.connecting();
    second.open();
    await settle();
    executor.finish(0, { success: true, result: { id: 1 } });
    await settle();
    assert.deepEqual(lost, ['r1@1']);
    assert.deepEqual(results(socket), []);
    assert.deepEqual(results(second), []);
    assert.equal(second.sentOf('plugin_status').length, 1);
    connection.close();
  });

  it('answers on the old socket a command it carried while it was being replaced', async () => {
    const executor = new ScriptedExecutor();
    const { backend, clock, connection, socket } = await setUp({}, executor.run);
    await clock.advance(110 * MINUTE - 1000);
    socket.receive(command('r1'));
    await settle();
    await clock.advance(1000);
    const fresh = await backend.connecting();
    fresh.open();
    await settle();
    assert.equal(socket.closeCode, undefined, 'held open by the running command');
    executor.finish(0, { success: true, result: { id: 1 } });
    await settle();
    assert.equal(results(socket).length, 1);
    assert.deepEqual(results(fresh), []);
    assert.equal(socket.closeCode, 1000);
    connection.close();
  });

  it('reports a refused answer (another tab’s command: forbidden) and goes on', async () => {
    const { connection, bridge, socket } = await setUp();
    const refused: string[] = [];
    bridge.on('refused', (error, refusedCommand) => refused.push(`${error.code}:${refusedCommand?.step}`));
    socket.receive(command('r1'));
    await settle();
    socket.receive({ type: 'error', code: 'forbidden', message: 'the command belongs to another tab', request_id: 'r1' });
    socket.receive(command('r2', { step: 'create_item' }));
    await settle();
    assert.deepEqual(refused, ['forbidden:upload_photo_1']);
    assert.deepEqual(
      results(socket).map((result) => result['request_id']),
      ['r1', 'r2'],
    );
    assert.equal(connection.state, 'open');
    connection.close();
  });

  it('answers a thrown error as a failure without a status (Vinted not reached: retried)', async () => {
    const { connection, bridge, socket } = await setUp({}, () => {
      throw new Error('the extension is not installed');
    });
    const errors: unknown[] = [];
    bridge.on('executor_error', (_command, error) => errors.push(error));
    socket.receive(command('r1'));
    await settle();
    assert.deepEqual(results(socket), [
      { action: 'plugin_result', request_id: 'r1', success: false, error: 'the extension failed: the extension is not installed' },
    ]);
    assert.equal(errors.length, 1);
    connection.close();
  });

  it('tells a change of the extension’s state, and withdraws the tab on stop', async () => {
    const executor = new ScriptedExecutor();
    const { connection, bridge, socket } = await setUp({}, executor.run);
    bridge.setStatus({ vintedLoggedIn: false });
    assert.equal(socket.sentOf('plugin_status').at(-1)?.['vinted_logged_in'], false);
    socket.receive(command('r1'));
    await settle();
    bridge.stop();
    await settle();
    assert.equal(executor.calls[0]?.context.signal.aborted, true);
    assert.equal(socket.sentOf('plugin_status').at(-1)?.['ready'], false);
    executor.finish(0, { success: true, result: {} });
    socket.receive(command('r2'));
    await settle();
    assert.equal(executor.calls.length, 1);
    assert.deepEqual(results(socket), []);
    connection.close();
  });
});
