/**
 * The WebSocket side: one `Connection` per tab that stays open by itself (docs/websocket-protocol.md).
 *
 * - a fresh token (`getToken()`) before every attempt, in the URL's `token` query parameter;
 * - reconnection with exponential backoff and full jitter: attempt n waits random() × min(cap, base × 2ⁿ),
 *   n back to 0 once a socket opens;
 * - a `ping` when nothing was sent for `idlePingMs` (API Gateway closes a connection idle for 10 minutes),
 *   and a socket that does not answer it within `pongTimeoutMs` is taken for dead and replaced;
 * - a new socket before API Gateway's 2-hour limit (`maxAgeMs`, 110 min): the new one opens first, then the
 *   old one is closed once the commands it carries are answered (`SocketHandle.hold`), so there is no gap;
 * - the backend sends `jobs.active` on every connect: it replaces the job store (`jobs`), which the
 *   `job.*` messages then keep up to date; `watchJob(id)` settles on completed, failed or cancelled only;
 * - an `error` `too_many_connections` (the user opened a 21st connection elsewhere) closes it for good:
 *   reconnecting would close the user's next oldest tab.
 */
import { Listeners, rethrowLater, type Unsubscribe } from './events.js';
import {
  isFinalStatus,
  isServerMessage,
  type ActiveJob,
  type ClientMessage,
  type ErrorMessage,
  type JobError,
  type JobFinalMessage,
  type JobStatus,
  type JsonObject,
  type ServerMessage,
  type ServerMessageOf,
  type ServerMessageType,
  type WaitReason,
} from './protocol.js';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** What the connection needs of a WebSocket: the browser's, or the `ws` package's in Node. */
export interface SocketLike {
  readonly readyState: number;
  // `any`: the DOM's and ws's event types differ; only `data`, `code` and `reason` are read.
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type SocketConstructor = new (url: string) => SocketLike;

/** Time, injectable for tests. */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as Parameters<typeof globalThis.clearTimeout>[0]),
};

export interface Backoff {
  /** The first retry waits up to this (ms). Default 500. */
  baseMs?: number;
  /** No retry waits longer (ms). Default 30 000. */
  capMs?: number;
}

/** A job's end as GET /jobs/{job_id} tells it: what `fetchJob` returns. */
export interface FetchedJob {
  status: string;
  result?: unknown;
  error?: unknown;
}

export interface ConnectOptions {
  /** wss://{api}.execute-api.{region}.amazonaws.com/{stage}, or ws://127.0.0.1:8001 on the devstack. */
  url: string;
  /** The JWT, asked before every connection attempt (so an expired one is never reused). */
  getToken: () => string | Promise<string>;
  /** Default: the global WebSocket (Node 20 has none: pass the `ws` package's). */
  WebSocket?: SocketConstructor;
  clock?: Clock;
  /** Default Math.random: the jitter. */
  random?: () => number;
  /** A `ping` when nothing was sent for this long. Default 5 min. */
  idlePingMs?: number;
  /** No frame within this after a ping: the socket is taken for dead and replaced. Default 60 s. */
  pongTimeoutMs?: number;
  /** A socket is replaced once this old (API Gateway closes it at 2 h). Default 110 min. */
  maxAgeMs?: number;
  /** A replaced socket is closed once its commands are answered, or this long after at most. Default 2 min. */
  drainMs?: number;
  /** An attempt that has not opened by then has failed. Default 30 s. */
  connectTimeoutMs?: number;
  backoff?: Backoff;
  /** How `watchJob` learns how a job ended while no socket was open (`jobs.active` no longer lists it),
   * e.g. `(id) => api.get('/jobs/{job_id}', { params: { job_id: id } })`. Without it such a watch waits on. */
  fetchJob?: (jobId: string) => Promise<FetchedJob | null | undefined>;
  /** A handler threw. Default: rethrown asynchronously (the connection goes on). */
  onHandlerError?: (error: unknown, event: string) => void;
}

/** One socket of the connection, as handlers see it: a command must be answered on the socket it came on. */
export interface SocketHandle {
  /** 1, 2, 3… in the order the sockets were opened. */
  readonly id: number;
  /** Open, and neither closed nor being closed. */
  readonly isOpen: boolean;
  /** Send on this socket only; false when it is no longer open (then nothing is sent anywhere). */
  send(message: ClientMessage): boolean;
  /** Keep this socket open while a command it carried runs: a replaced socket is closed only once every hold
   * is released (or `drainMs` passed). Returns the release function (calling it twice is harmless). */
  hold(): () => void;
}

export interface CloseReason {
  /** closed: `close()` was called; too_many_connections: the backend closed this tab for a newer one. */
  code: 'closed' | 'too_many_connections';
  message: string;
}

/** A job as this tab knows it: `jobs.active`'s view, kept up to date by the job messages. A job first seen in
 * a live message (created after the last `jobs.active`) has only what those messages say. */
export interface JobView extends Partial<Omit<ActiveJob, 'job_id' | 'status'>> {
  job_id: string;
  status: JobStatus;
  /** The last progress message's text. */
  message?: string;
  /** A completed job's result. */
  result?: JsonObject;
  /** The message type that last changed it. */
  updated_by: ServerMessageType;
}

type ServerMessageHandlers = {
  [K in ServerMessageType]: (message: ServerMessageOf<K>, socket: SocketHandle) => void;
};

export interface ConnectionEvents extends ServerMessageHandlers {
  /** The connection's state changed. */
  state: (state: ConnectionState, previous: ConnectionState) => void;
  /** A socket opened. `reconnected`: an earlier one had; `replacing`: it replaces one that is still open. */
  open: (socket: SocketHandle, info: { reconnected: boolean; replacing: boolean }) => void;
  /** A socket closed (`current`: it was the one in use; `draining`: it had been replaced). */
  socket_closed: (socket: SocketHandle, info: { code: number; reason: string; current: boolean }) => void;
  /** An attempt failed; the next one is in `retryInMs`. */
  connect_failed: (info: { attempt: number; error: unknown; retryInMs: number }) => void;
  /** A socket is being replaced (age, or no answer to a ping). */
  replacing: (socket: SocketHandle, why: 'max_age' | 'no_pong') => void;
  /** Every message of the protocol, after the store was updated. */
  message: (message: ServerMessage, socket: SocketHandle) => void;
  /** A frame that is not a message of the protocol (not JSON, not an object, an unknown type). */
  invalid_frame: (data: unknown, socket: SocketHandle) => void;
  /** The job store changed. */
  jobs: (jobs: ReadonlyMap<string, JobView>) => void;
  /** Closed for good: why. */
  closed: (reason: CloseReason) => void;
}

export type { Unsubscribe } from './events.js';

export interface Connection {
  readonly state: ConnectionState;
  /** Why it is closed, once it is. */
  readonly closeReason: CloseReason | null;
  /** The socket in use (open), or null. */
  readonly socket: SocketHandle | null;
  /** The user's jobs as this tab knows them (see JobView). */
  readonly jobs: ReadonlyMap<string, JobView>;
  /** The last `jobs.active` said there were more than it lists. */
  readonly jobsTruncated: boolean;
  on<K extends keyof ConnectionEvents>(type: K, handler: ConnectionEvents[K]): Unsubscribe;
  /** Send on the socket in use; false when none is open (nothing is queued). */
  send(message: ClientMessage): boolean;
  /** Ask for `jobs.active` again (the backend sends it on every connect by itself). */
  resume(): boolean;
  /** Settles with how the job ended: job.completed, job.failed or job.cancelled (never job.retrying, which is
   * not an end). At once when the job is known to have ended. Rejects when the connection closes for good or
   * `signal` aborts. */
  watchJob(jobId: string, options?: { signal?: AbortSignal }): Promise<JobFinalMessage>;
  /** Close every socket and stop reconnecting. */
  close(): void;
}

export class ConnectionClosedError extends Error {
  override readonly name = 'ConnectionClosedError';
  constructor(readonly reason: CloseReason) {
    super(`the connection is closed: ${reason.message}`);
  }
}

/** The delay before attempt `attempt` (0 first): full jitter over an exponential ceiling. */
export function backoffDelay(attempt: number, random: () => number, backoff: Backoff = {}): number {
  const base = backoff.baseMs ?? 500;
  const cap = backoff.capMs ?? 30_000;
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 40));
  return random() * ceiling;
}

export function connect(options: ConnectOptions): Connection {
  return new RealtimeConnection(options);
}

const OPEN = 1; // WebSocket.OPEN, in the browser and in ws
const REMEMBERED_ENDS = 1000; // how many ended jobs watchJob still knows

type Role = 'pending' | 'current' | 'draining' | 'ended';
type TimerName = 'connect' | 'ping' | 'pong' | 'age' | 'drain';

class ManagedSocket implements SocketHandle {
  role: Role = 'pending';
  opened = false;
  holds = 0;
  tooMany: ErrorMessage | null = null;
  timers = new Map<TimerName, unknown>();

  constructor(
    private readonly owner: RealtimeConnection,
    readonly raw: SocketLike,
    readonly id: number,
  ) {}

  get isOpen(): boolean {
    return this.opened && (this.role === 'current' || this.role === 'draining') && this.raw.readyState === OPEN;
  }

  send(message: ClientMessage): boolean {
    if (!this.isOpen) return false;
    try {
      this.raw.send(JSON.stringify(message));
    } catch {
      return false;
    }
    this.owner.sent(this);
    return true;
  }

  hold(): () => void {
    this.holds += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds -= 1;
      this.owner.released(this);
    };
  }
}

class RealtimeConnection implements Connection {
  private _state: ConnectionState = 'connecting';
  private _closeReason: CloseReason | null = null;
  private current: ManagedSocket | null = null;
  private pending: ManagedSocket | null = null;
  private readonly draining = new Set<ManagedSocket>();
  private tokenInFlight = false;
  private attempt = 0;
  private retryTimer: unknown = null;
  private everOpened = false;
  private nextSocketId = 1;
  private readonly listeners = new Listeners<ConnectionEvents>((error, type) =>
    (this.options.onHandlerError ?? rethrowLater)(error, type),
  );
  private readonly store = new Map<string, JobView>();
  private truncated = false;
  private readonly endings = new Map<string, JobFinalMessage>();
  private readonly lastProgress = new Map<string, string>();
  private readonly watchers = new Map<string, Set<(end: JobFinalMessage) => void>>();
  private readonly closers = new Set<(reason: CloseReason) => void>();

  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly Socket: SocketConstructor;
  private readonly idlePingMs: number;
  private readonly pongTimeoutMs: number;
  private readonly maxAgeMs: number;
  private readonly drainMs: number;
  private readonly connectTimeoutMs: number;

  constructor(private readonly options: ConnectOptions) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    const Socket = options.WebSocket ?? (globalThis as { WebSocket?: SocketConstructor }).WebSocket;
    if (Socket === undefined) throw new TypeError('no global WebSocket: pass `WebSocket` (e.g. the ws package\'s)');
    this.Socket = Socket;
    this.idlePingMs = options.idlePingMs ?? 5 * 60_000;
    this.pongTimeoutMs = options.pongTimeoutMs ?? 60_000;
    this.maxAgeMs = options.maxAgeMs ?? 110 * 60_000;
    this.drainMs = options.drainMs ?? 120_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 30_000;
    // After the caller's own code: the handlers it adds right after connect() hear of the first attempt.
    queueMicrotask(() => void this.attemptNow());
  }

  get state(): ConnectionState {
    return this._state;
  }

  get closeReason(): CloseReason | null {
    return this._closeReason;
  }

  get socket(): SocketHandle | null {
    return this.current?.isOpen ? this.current : null;
  }

  get jobs(): ReadonlyMap<string, JobView> {
    return this.store;
  }

  get jobsTruncated(): boolean {
    return this.truncated;
  }

  on<K extends keyof ConnectionEvents>(type: K, handler: ConnectionEvents[K]): Unsubscribe {
    return this.listeners.on(type, handler);
  }

  send(message: ClientMessage): boolean {
    return this.current?.send(message) ?? false;
  }

  resume(): boolean {
    return this.send({ action: 'resume' });
  }

  watchJob(jobId: string, options: { signal?: AbortSignal } = {}): Promise<JobFinalMessage> {
    if (this._closeReason !== null) return Promise.reject(new ConnectionClosedError(this._closeReason));
    const known = this.endings.get(jobId);
    if (known !== undefined) return Promise.resolve(known);
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<JobFinalMessage>((resolve, reject) => {
      let set = this.watchers.get(jobId);
      if (set === undefined) {
        set = new Set();
        this.watchers.set(jobId, set);
      }
      const watchers = set;
      const cleanup = (): void => {
        watchers.delete(settle);
        if (watchers.size === 0 && this.watchers.get(jobId) === watchers) this.watchers.delete(jobId);
        this.closers.delete(closed);
        signal?.removeEventListener('abort', aborted);
      };
      const settle = (end: JobFinalMessage): void => {
        cleanup();
        resolve(end);
      };
      const closed = (reason: CloseReason): void => {
        cleanup();
        reject(new ConnectionClosedError(reason));
      };
      const aborted = (): void => {
        cleanup();
        reject(signal?.reason);
      };
      watchers.add(settle);
      this.closers.add(closed);
      signal?.addEventListener('abort', aborted, { once: true });
      // It may have ended before this tab heard of it (while no socket was open).
      this.lookUp(jobId);
    });
  }

  close(): void {
    this.shutdown({ code: 'closed', message: 'closed by the web app' });
  }

  // ------------------------------------------------------------------------------------ sockets

  /** Called by a socket after each send: the idle ping counts from the last one. */
  sent(socket: ManagedSocket): void {
    if (socket.role !== 'current') return;
    this.setTimer(socket, 'ping', this.idlePingMs, () => this.ping(socket));
  }

  /** Called when a hold on a socket is released: a replaced one closes once none is left. */
  released(socket: ManagedSocket): void {
    if (socket.role === 'draining' && socket.holds <= 0) this.finish(socket, 1000, 'replaced by a newer connection');
  }

  private async attemptNow(): Promise<void> {
    if (this._closeReason !== null || this.pending !== null || this.tokenInFlight) return;
    this.tokenInFlight = true;
    let url: string;
    try {
      url = withToken(this.options.url, await this.options.getToken());
    } catch (error) {
      this.tokenInFlight = false; // before attemptFailed, which may start the next attempt
      if (this._closeReason === null) this.attemptFailed(error);
      return;
    } finally {
      this.tokenInFlight = false;
    }
    if (this._closeReason !== null) return;
    let raw: SocketLike;
    try {
      raw = new this.Socket(url);
    } catch (error) {
      this.attemptFailed(error);
      return;
    }
    const socket = new ManagedSocket(this, raw, this.nextSocketId++);
    this.pending = socket;
    raw.onopen = () => this.opened(socket);
    raw.onmessage = (event: { data?: unknown }) => this.received(socket, event?.data);
    raw.onclose = (event: { code?: number; reason?: string }) =>
      this.closed(socket, event?.code ?? 1006, event?.reason ?? '');
    raw.onerror = () => {}; // a close event follows
    this.setTimer(socket, 'connect', this.connectTimeoutMs, () => {
      if (socket.role === 'pending') this.abandon(socket, 'the connection did not open in time');
    });
  }

  private attemptFailed(error: unknown): void {
    const retryInMs = backoffDelay(this.attempt, this.random, this.options.backoff);
    this.attempt += 1;
    if (this.current === null) this.setState('reconnecting');
    this.emit('connect_failed', { attempt: this.attempt, error, retryInMs });
    this.scheduleAttempt(retryInMs);
  }

  private scheduleAttempt(delay: number): void {
    if (this.retryTimer !== null) this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = null;
      void this.attemptNow();
    }, delay);
  }

  private opened(socket: ManagedSocket): void {
    if (socket.role !== 'pending' || socket !== this.pending) return;
    this.clearTimer(socket, 'connect');
    if (this._closeReason !== null) {
      this.finish(socket, 1000, 'closed by the web app');
      return;
    }
    this.pending = null;
    socket.opened = true;
    socket.role = 'current';
    this.attempt = 0;
    const previous = this.current;
    this.current = socket;
    this.setTimer(socket, 'ping', this.idlePingMs, () => this.ping(socket));
    this.setTimer(socket, 'age', this.maxAgeMs, () => this.replace(socket, 'max_age'));
    const reconnected = this.everOpened;
    this.everOpened = true;
    this.setState('open');
    // The relay says the extension is ready on the new socket before the old one may close: the backend
    // always has a ready tab.
    this.emit('open', socket, { reconnected, replacing: previous !== null });
    if (previous !== null && previous.role === 'current') this.drain(previous);
  }

  private received(socket: ManagedSocket, data: unknown): void {
    if (socket.role === 'ended' || socket.role === 'pending') return;
    this.clearTimer(socket, 'pong');
    let parsed: unknown;
    try {
      parsed = typeof data === 'string' ? JSON.parse(data) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!isServerMessage(parsed)) {
      this.emit('invalid_frame', data, socket);
      return;
    }
    // A replaced socket still carries its commands and the answers to its results; what goes to every
    // connection of the user comes on the new one too.
    if (socket.role === 'draining' && parsed.type !== 'plugin.command' && parsed.type !== 'error') return;
    if (parsed.type === 'error' && parsed.code === 'too_many_connections') socket.tooMany = parsed;
    if (parsed.type === 'plugin.command' && parsed.progress !== undefined) this.dispatch(parsed.progress, socket);
    this.dispatch(parsed, socket);
  }

  private closed(socket: ManagedSocket, code: number, reason: string): void {
    if (socket.role === 'ended') return;
    const role = socket.role;
    this.end(socket);
    if (role === 'pending') {
      if (this.pending === socket) this.pending = null;
      if (this._closeReason === null) {
        this.attemptFailed(new Error(`the connection closed before it opened (code ${code}${reason ? `: ${reason}` : ''})`));
      }
      return;
    }
    const wasCurrent = role === 'current';
    this.emit('socket_closed', socket, { code, reason, current: wasCurrent });
    if (!wasCurrent || this._closeReason !== null) return;
    this.current = null;
    if (socket.tooMany !== null) {
      this.shutdown({ code: 'too_many_connections', message: socket.tooMany.message });
      return;
    }
    this.setState('reconnecting');
    if (this.pending !== null || this.tokenInFlight || this.retryTimer !== null) return; // one is under way
    const delay = backoffDelay(this.attempt, this.random, this.options.backoff);
    this.attempt += 1;
    this.scheduleAttempt(delay);
  }

  private ping(socket: ManagedSocket): void {
    if (socket.role !== 'current') return;
    if (!socket.send({ action: 'ping' })) return;
    if (!socket.timers.has('pong')) {
      this.setTimer(socket, 'pong', this.pongTimeoutMs, () => this.replace(socket, 'no_pong'));
    }
  }

  /** Open a new socket for this one. A socket that stopped answering is dropped at once; an old one stays
   * until the new one is open. */
  private replace(socket: ManagedSocket, why: 'max_age' | 'no_pong'): void {
    if (socket.role !== 'current' || this._closeReason !== null) return;
    this.emit('replacing', socket, why);
    if (why === 'no_pong') {
      this.abandon(socket, 'no answer to a ping');
      return;
    }
    if (this.pending === null && !this.tokenInFlight) {
      if (this.retryTimer !== null) this.clock.clearTimeout(this.retryTimer);
      this.retryTimer = null;
      void this.attemptNow();
    }
  }

  /** Stop using a socket now, whatever its state, as if it had closed (its close event may come late). */
  private abandon(socket: ManagedSocket, why: string): void {
    closeQuietly(socket.raw, 4000, why);
    this.closed(socket, 4000, why);
  }

  private drain(socket: ManagedSocket): void {
    socket.role = 'draining';
    this.draining.add(socket);
    for (const timer of ['ping', 'pong', 'age'] as const) this.clearTimer(socket, timer);
    if (socket.holds <= 0) {
      this.finish(socket, 1000, 'replaced by a newer connection');
      return;
    }
    this.setTimer(socket, 'drain', this.drainMs, () => this.finish(socket, 1000, 'replaced by a newer connection'));
  }

  /** Close a socket this side no longer needs. */
  private finish(socket: ManagedSocket, code: number, reason: string): void {
    if (socket.role === 'ended') return;
    const role = socket.role;
    this.end(socket);
    closeQuietly(socket.raw, code, reason);
    if (role === 'draining') this.emit('socket_closed', socket, { code, reason, current: false });
  }

  private end(socket: ManagedSocket): void {
    socket.role = 'ended';
    for (const handle of socket.timers.values()) this.clock.clearTimeout(handle);
    socket.timers.clear();
    this.draining.delete(socket);
    if (this.pending === socket) this.pending = null;
  }

  private shutdown(reason: CloseReason): void {
    if (this._closeReason !== null) return;
    this._closeReason = reason;
    if (this.retryTimer !== null) this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    for (const socket of [this.pending, this.current, ...this.draining]) {
      if (socket !== null) this.finish(socket, 1000, reason.message.slice(0, 100));
    }
    this.pending = null;
    this.current = null;
    this.setState('closed');
    for (const closer of [...this.closers]) closer(reason);
    this.emit('closed', reason);
  }

  private setTimer(socket: ManagedSocket, name: TimerName, ms: number, run: () => void): void {
    this.clearTimer(socket, name);
    socket.timers.set(
      name,
      this.clock.setTimeout(() => {
        socket.timers.delete(name);
        run();
      }, ms),
    );
  }

  private clearTimer(socket: ManagedSocket, name: TimerName): void {
    const handle = socket.timers.get(name);
    if (handle !== undefined) this.clock.clearTimeout(handle);
    socket.timers.delete(name);
  }

  private setState(state: ConnectionState): void {
    const previous = this._state;
    if (previous === state) return;
    this._state = state;
    this.emit('state', state, previous);
  }

  // ------------------------------------------------------------------------------------ messages and jobs

  private dispatch(message: ServerMessage, socket: SocketHandle): void {
    if (!this.apply(message)) return; // a repeat (the same progress, an end already known): not shown twice
    this.emit('message', message, socket);
    (this.emit as (type: string, ...args: unknown[]) => void)(message.type, message, socket);
  }

  /** Update the job store; false when the message only repeats what it knows. */
  private apply(message: ServerMessage): boolean {
    switch (message.type) {
      case 'jobs.active': {
        // Authoritative: it replaces the store. But a job whose end came first (the end and this list travel
        // apart) stays ended.
        this.store.clear();
        for (const job of message.jobs) {
          const end = this.endings.get(job.job_id);
          const view: JobView = { ...job, updated_by: 'jobs.active' };
          this.store.set(job.job_id, end === undefined ? view : { ...view, ...endChanges(end), updated_by: end.type });
        }
        this.truncated = message.truncated;
        for (const jobId of this.lastProgress.keys()) if (!this.store.has(jobId)) this.lastProgress.delete(jobId);
        this.changed();
        if (!message.truncated) for (const jobId of this.watchers.keys()) if (!this.store.has(jobId)) this.lookUp(jobId);
        return true;
      }
      case 'job.progress': {
        const key = `${message.step}/${message.current_step}/${message.total_steps}`;
        if (this.lastProgress.get(message.job_id) === key || this.endings.has(message.job_id)) return false;
        this.lastProgress.set(message.job_id, key);
        this.update(message.job_id, 'job.progress', {
          status: 'running',
          batch_id: message.batch_id,
          step: message.step,
          current_step: message.current_step,
          total_steps: message.total_steps,
          message: message.message,
          wait_reason: null,
          wait_until: null,
        });
        return true;
      }
      case 'plugin.command':
        if (!this.endings.has(message.job_id)) {
          this.update(message.job_id, 'plugin.command', { status: 'running', step: message.step, wait_reason: null, wait_until: null });
        }
        return true;
      case 'job.waiting':
        if (this.endings.has(message.job_id)) return false;
        this.update(message.job_id, 'job.waiting', {
          status: waitingStatus(message.reason, message.until, this.store.get(message.job_id)?.status),
          wait_reason: message.reason,
          wait_until: message.until,
        });
        return true;
      case 'job.retrying':
        if (this.endings.has(message.job_id)) return false;
        this.update(message.job_id, 'job.retrying', {
          status: 'waiting',
          wait_reason: 'backoff',
          wait_until: message.next_attempt_at,
          attempts: message.attempt - 1,
          error: message.error,
        });
        return true;
      case 'job.completed':
      case 'job.failed':
      case 'job.cancelled':
        return this.jobEnded(message);
      default:
        return true;
    }
  }

  private jobEnded(message: JobFinalMessage): boolean {
    if (this.endings.has(message.job_id)) return false;
    this.remember(message);
    this.update(message.job_id, message.type, endChanges(message));
    this.settle(message);
    return true;
  }

  private remember(message: JobFinalMessage): void {
    this.endings.set(message.job_id, message);
    this.lastProgress.delete(message.job_id);
    if (this.endings.size > REMEMBERED_ENDS) {
      const oldest = this.endings.keys().next().value;
      if (oldest !== undefined) this.endings.delete(oldest);
    }
  }

  private settle(message: JobFinalMessage): void {
    const watchers = this.watchers.get(message.job_id);
    if (watchers === undefined) return;
    for (const settle of [...watchers]) settle(message);
  }

  private update(jobId: string, by: ServerMessageType, changes: Partial<JobView>): void {
    const known = this.store.get(jobId);
    const view: JobView = { ...(known ?? { job_id: jobId, status: 'running' }), ...changes, job_id: jobId, updated_by: by };
    this.store.set(jobId, view);
    this.changed();
  }

  private changed(): void {
    this.emit('jobs', this.store);
  }

  /** Ask the API how a watched job stands, and settle its watchers if it ended. */
  private lookUp(jobId: string): void {
    const fetchJob = this.options.fetchJob;
    if (fetchJob === undefined) return;
    fetchJob(jobId).then(
      (job) => {
        if (job === null || job === undefined || !isFinalStatus(job.status) || this.endings.has(jobId)) return;
        if (!this.watchers.has(jobId)) return;
        this.jobEnded(endOf(jobId, job));
      },
      () => {
        // unknown for now: the next jobs.active, or the job's own message, tells
      },
    );
  }

  private emit<K extends keyof ConnectionEvents>(type: K, ...args: Parameters<ConnectionEvents[K]>): void {
    this.listeners.emit(type, ...args);
  }
}

/** Close a socket, whatever state it is in (a browser refuses a reason over 123 bytes: then none is given). */
function closeQuietly(socket: SocketLike, code: number, reason: string): void {
  try {
    socket.close(code, reason);
  } catch {
    try {
      socket.close(code);
    } catch {
      // closed or closing already
    }
  }
}

function withToken(url: string, token: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('token', token);
  return parsed.toString();
}

function waitingStatus(reason: WaitReason, until: string | null, current: JobStatus | undefined): JobStatus {
  switch (reason) {
    case 'pacing':
      return current === 'pending' ? 'pending' : 'running';
    case 'no_plugin':
    case 'plugin_not_ready':
    case 'plugin_logged_out':
      return 'waiting_for_plugin';
    case 'challenge': // a Vinted pause has an end; a tab reporting a challenge does not
      return until === null ? 'waiting_for_plugin' : 'waiting';
    default:
      return 'waiting';
  }
}

/** What a job's end changes in its view. */
function endChanges(message: JobFinalMessage): Partial<JobView> {
  const wait = { wait_reason: null, wait_until: null, waiting_for_job_id: null };
  switch (message.type) {
    case 'job.completed':
      return { status: 'completed', result: message.result, ...wait };
    case 'job.failed':
      return { status: 'failed', error: message.error, ...wait };
    case 'job.cancelled':
      return { status: 'cancelled', ...wait };
  }
}

function endOf(jobId: string, job: FetchedJob): JobFinalMessage {
  if (job.status === 'completed') {
    const result = typeof job.result === 'object' && job.result !== null ? (job.result as JsonObject) : {};
    return { type: 'job.completed', job_id: jobId, result };
  }
  if (job.status === 'failed') {
    const error =
      typeof job.error === 'object' && job.error !== null
        ? (job.error as JobError)
        : { code: 'failed', message: 'the job failed' };
    return { type: 'job.failed', job_id: jobId, error };
  }
  return { type: 'job.cancelled', job_id: jobId };
}
