import type { SocketConstructor, SocketLike } from '../../src/realtime.js';
import { settle } from './fake-clock.js';

/** One socket the code under test opened; the test plays the backend's side. */
export class FakeSocket implements SocketLike {
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  /** The messages the client sent, parsed. */
  readonly sent: Record<string, unknown>[] = [];
  /** How the client closed it, if it did. */
  closedByClient: { code: number | undefined; reason: string | undefined } | null = null;
  /** Answer each ping with a pong, as the backend does. */
  autoPong = true;

  constructor(readonly url: string) {}

  get token(): string | null {
    return new URL(this.url).searchParams.get('token');
  }

  /** The backend accepted the connection. */
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** The backend sends a message. */
  receive(message: object | string): void {
    this.onmessage?.({ data: typeof message === 'string' ? message : JSON.stringify(message) });
  }

  /** The backend (or the network) closes it. */
  drop(code = 1006, reason = ''): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  /** The upgrade is refused (e.g. 401): error, then close, never open. */
  refuse(): void {
    this.onerror?.({});
    this.drop(1006, '');
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('InvalidStateError: the socket is not open');
    const message = JSON.parse(data) as Record<string, unknown>;
    this.sent.push(message);
    if (message['action'] === 'ping' && this.autoPong) {
      queueMicrotask(() => {
        if (this.readyState === 1) this.receive({ type: 'pong' });
      });
    }
  }

  close(code?: number, reason?: string): void {
    this.closedByClient = { code, reason };
    if (this.readyState === 3) return;
    this.readyState = 2;
    queueMicrotask(() => this.drop(code ?? 1000, reason ?? ''));
  }

  /** The code the client closed it with (undefined: it did not close it). */
  get closeCode(): number | undefined {
    return this.closedByClient === null ? undefined : (this.closedByClient.code ?? 1005);
  }

  /** The messages sent with this action. */
  sentOf(action: string): Record<string, unknown>[] {
    return this.sent.filter((message) => message['action'] === action);
  }
}

/** Records every socket the client creates. */
export class FakeBackend {
  readonly sockets: FakeSocket[] = [];
  readonly WebSocket: SocketConstructor;

  constructor() {
    const sockets = this.sockets;
    this.WebSocket = class extends FakeSocket {
      constructor(url: string) {
        super(url);
        sockets.push(this);
      }
    };
  }

  get last(): FakeSocket {
    const socket = this.sockets.at(-1);
    if (socket === undefined) throw new Error('no socket was opened');
    return socket;
  }

  /** The socket the client is opening (waiting for it: its token is asked asynchronously). */
  async connecting(): Promise<FakeSocket> {
    for (let i = 0; i < 20; i += 1) {
      const last = this.sockets.at(-1);
      if (last !== undefined && last.readyState === 0) return last;
      await settle();
    }
    throw new Error(`no socket is being opened (${this.sockets.length} so far)`);
  }

  /** The client's `count`th socket (waiting for it). */
  async next(count: number): Promise<FakeSocket> {
    for (let i = 0; i < 20 && this.sockets.length < count; i += 1) await settle();
    if (this.sockets.length < count) throw new Error(`expected ${count} sockets, got ${this.sockets.length}`);
    return this.sockets[count - 1] as FakeSocket;
  }
}
