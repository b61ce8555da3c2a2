/**
 * The bridge between the backend and the browser extension: `relay(connection, executor)` says the extension
 * is ready (`plugin_status`) on every socket the connection opens, and runs each `plugin.command` with the
 * executor (the extension's call on Vinted):
 *
 * - at most once per request id (ids remembered in `sessionStorage` when given: a reloaded tab does not run
 *   a command again);
 * - aborted (`signal`) at the command's `timeout_ms`: the backend has moved on by then, so it is not answered;
 * - answered (`plugin_result`, the executor's result field for field) on the socket it came on only. When
 *   that socket closed first, the answer is dropped and `command_lost` is emitted: the backend gives the step
 *   to a ready tab after checking whether the write landed, and a late answer on another socket would be
 *   refused (`forbidden`) anyway.
 */
import type {
  ErrorMessage,
  JsonObject,
  PluginCommandMessage,
  PluginResultAction,
  PluginStatusAction,
  PluginStatusRecordedMessage,
} from './protocol.js';
import { Listeners, type Unsubscribe } from './events.js';
import { systemClock, type Clock, type Connection, type SocketHandle } from './realtime.js';

/** What the extension reports for one command: each field is the `plugin_result` field of the same name
 * (`result`: Vinted's JSON answer, `{id}` for a photo, `{item: {id, url}}` for an item). */
export type ExecutorResult =
  | ({ success: true; result: JsonObject | null } & Pick<PluginResultAction, 'status'>)
  | ({ success: false; error: string } & Pick<
      PluginResultAction,
      'status' | 'retry_after' | 'error_kind' | 'image_url' | 'image_status' | 'image_error'
    >);

export interface ExecutorContext {
  /** Aborted at the command's `timeout_ms`, or when the relay stops. */
  signal: AbortSignal;
  /** The socket the command came on. */
  socket: SocketHandle;
}

/** Runs one command on Vinted (the extension). A thrown error is answered as a failure without a status
 * (Vinted not reached: the backend tries again). */
export type Executor = (
  command: PluginCommandMessage,
  context: ExecutorContext,
) => ExecutorResult | Promise<ExecutorResult>;

/** What the relay needs of `window.sessionStorage`. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** The extension's state, as `plugin_status` says it. */
export interface ExtensionStatus {
  /** Default true: the extension is installed and can run commands. */
  ready?: boolean;
  /** Default true. */
  vintedLoggedIn?: boolean;
  /** Default false: Vinted shows a bot challenge (captcha). */
  challenge?: boolean;
  /** The Vinted account the extension is logged in as. */
  vintedUserId?: string | null;
}

export interface RelayOptions extends ExtensionStatus {
  /** At most 50 characters. */
  extensionVersion: string;
  /** window.sessionStorage in a browser: the request ids run in this tab survive a reload. */
  sessionStorage?: StorageLike;
  /** Default "crosslist.relay.request_ids". */
  storageKey?: string;
  /** How many request ids are remembered. Default 500. */
  remember?: number;
  /** Default: the system's (the timeouts). */
  clock?: Clock;
}

export interface RelayEvents {
  /** A command is about to run. */
  command: (command: PluginCommandMessage, socket: SocketHandle) => void;
  /** A command with a request id already run (or running) here: not run again. */
  duplicate: (command: PluginCommandMessage, socket: SocketHandle) => void;
  /** A command was answered. */
  answered: (command: PluginCommandMessage, result: PluginResultAction, socket: SocketHandle) => void;
  /** The socket a command came on closed before it was answered: the answer was dropped. */
  command_lost: (info: { command: PluginCommandMessage; result: PluginResultAction; socket: SocketHandle }) => void;
  /** A command ran out of time (`timeout_ms`): aborted, not answered. */
  timeout: (command: PluginCommandMessage, socket: SocketHandle) => void;
  /** The executor threw (answered as a failure without a status). */
  executor_error: (command: PluginCommandMessage, error: unknown) => void;
  /** The backend refused an answer of this relay (forbidden, expired, already_resolved, unknown_request…). */
  refused: (error: ErrorMessage, command: PluginCommandMessage | undefined) => void;
  /** The backend recorded this tab's plugin_status (`takes_commands`: commands come here from now on). */
  status: (message: PluginStatusRecordedMessage, socket: SocketHandle) => void;
}

export interface Relay {
  /** Commands running now. */
  readonly running: number;
  /** Tell the backend the extension's new state (sent now and on every later socket). */
  setStatus(status: ExtensionStatus): void;
  on<K extends keyof RelayEvents>(type: K, handler: RelayEvents[K]): Unsubscribe;
  /** Withdraw the tab (`plugin_status` not ready), abort the running commands (unanswered) and stop. */
  stop(): void;
}

const MAX_ERROR_LENGTH = 2000;
const ANSWERED_KEPT = 200; // request ids whose refusal can still be matched to their command

export function relay(connection: Connection, executor: Executor, options: RelayOptions): Relay {
  return new CommandRelay(connection, executor, options);
}

class CommandRelay implements Relay {
  private status: Required<ExtensionStatus>;
  private readonly seen: RequestIds;
  private readonly answered = new Map<string, PluginCommandMessage>();
  private readonly runningCommands = new Map<string, AbortController>();
  private readonly listeners = new Listeners<RelayEvents>();
  private readonly unsubscribes: Unsubscribe[] = [];
  private readonly clock: Clock;
  private stopped = false;

  constructor(
    private readonly connection: Connection,
    private readonly executor: Executor,
    private readonly options: RelayOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.status = {
      ready: options.ready ?? true,
      vintedLoggedIn: options.vintedLoggedIn ?? true,
      challenge: options.challenge ?? false,
      vintedUserId: options.vintedUserId ?? null,
    };
    this.seen = new RequestIds(
      options.sessionStorage,
      options.storageKey ?? 'crosslist.relay.request_ids',
      options.remember ?? 500,
    );
    this.unsubscribes.push(
      connection.on('open', (socket) => {
        socket.send(this.statusMessage());
      }),
      connection.on('plugin.command', (command, socket) => {
        void this.run(command, socket);
      }),
      connection.on('plugin.status', (message, socket) => this.emit('status', message, socket)),
      connection.on('error', (error) => {
        if (error.request_id !== null && this.answered.has(error.request_id)) {
          this.emit('refused', error, this.answered.get(error.request_id));
        }
      }),
    );
    connection.socket?.send(this.statusMessage()); // already open: say so now
  }

  get running(): number {
    return this.runningCommands.size;
  }

  setStatus(status: ExtensionStatus): void {
    this.status = { ...this.status, ...definedOnly(status) };
    if (!this.stopped) this.connection.socket?.send(this.statusMessage());
  }

  on<K extends keyof RelayEvents>(type: K, handler: RelayEvents[K]): Unsubscribe {
    return this.listeners.on(type, handler);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const unsubscribe of this.unsubscribes) unsubscribe();
    this.connection.socket?.send({ ...this.statusMessage(), ready: false });
    for (const controller of this.runningCommands.values()) controller.abort(new RelayStoppedError());
    this.runningCommands.clear();
  }

  private statusMessage(): PluginStatusAction {
    const message: PluginStatusAction = {
      action: 'plugin_status',
      ready: this.status.ready,
      extension_version: this.options.extensionVersion,
      vinted_logged_in: this.status.vintedLoggedIn,
      challenge: this.status.challenge,
    };
    if (this.status.vintedUserId !== null) message.vinted_user_id = this.status.vintedUserId;
    return message;
  }

  private async run(command: PluginCommandMessage, socket: SocketHandle): Promise<void> {
    if (this.stopped) return;
    if (this.runningCommands.has(command.request_id) || !this.seen.add(command.request_id)) {
      this.emit('duplicate', command, socket);
      return;
    }
    const controller = new AbortController();
    this.runningCommands.set(command.request_id, controller);
    const release = socket.hold();
    let timedOut = false;
    const timer = this.clock.setTimeout(() => {
      timedOut = true;
      controller.abort(new CommandTimeoutError(command));
    }, command.timeout_ms);
    const timeout = new Promise<'timeout'>((resolve) =>
      controller.signal.addEventListener('abort', () => resolve('timeout'), { once: true }),
    );
    try {
      this.emit('command', command, socket);
      let outcome: ExecutorResult | 'timeout';
      try {
        outcome = await Promise.race([
          Promise.resolve().then(() => this.executor(command, { signal: controller.signal, socket })),
          timeout,
        ]);
      } catch (error) {
        if (controller.signal.aborted) outcome = 'timeout';
        else {
          this.emit('executor_error', command, error);
          outcome = { success: false, error: `the extension failed: ${describe(error)}` };
        }
      }
      if (outcome === 'timeout' || controller.signal.aborted) {
        if (timedOut) this.emit('timeout', command, socket);
        return; // timed out (the backend moved on) or stopped: never answered
      }
      const result = resultMessage(command.request_id, outcome);
      if (socket.send(result)) {
        this.answered.set(command.request_id, command);
        if (this.answered.size > ANSWERED_KEPT) {
          const oldest = this.answered.keys().next().value;
          if (oldest !== undefined) this.answered.delete(oldest);
        }
        this.emit('answered', command, result, socket);
      } else {
        this.emit('command_lost', { command, result, socket });
      }
    } finally {
      this.clock.clearTimeout(timer);
      this.runningCommands.delete(command.request_id);
      release();
    }
  }

  private emit<K extends keyof RelayEvents>(type: K, ...args: Parameters<RelayEvents[K]>): void {
    this.listeners.emit(type, ...args);
  }
}

export class CommandTimeoutError extends Error {
  override readonly name = 'TimeoutError';
  constructor(readonly command: PluginCommandMessage) {
    super(`command ${command.request_id} (${command.step}) ran out of its ${command.timeout_ms} ms`);
  }
}

export class RelayStoppedError extends Error {
  override readonly name = 'AbortError';
  constructor() {
    super('the relay stopped');
  }
}

/** The plugin_result for an executor's result: the same fields, and only those the protocol knows. */
export function resultMessage(requestId: string, outcome: ExecutorResult): PluginResultAction {
  if (outcome.success) {
    const message: PluginResultAction = { action: 'plugin_result', request_id: requestId, success: true };
    message.result = outcome.result ?? null;
    if (outcome.status !== undefined && outcome.status !== null) message.status = outcome.status;
    return message;
  }
  const message: PluginResultAction = {
    action: 'plugin_result',
    request_id: requestId,
    success: false,
    error: (outcome.error || 'the extension reported a failure').slice(0, MAX_ERROR_LENGTH),
  };
  for (const field of ['status', 'retry_after', 'error_kind', 'image_url', 'image_status', 'image_error'] as const) {
    const value = outcome[field];
    if (value !== undefined && value !== null) (message as unknown as Record<string, unknown>)[field] = value;
  }
  return message;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message || error.name : String(error);
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, one]) => one !== undefined)) as Partial<T>;
}

/** The request ids run in this tab: in memory, and in sessionStorage when there is one (a reload keeps it). */
class RequestIds {
  private readonly ids: string[] = [];
  private readonly set = new Set<string>();

  constructor(
    private readonly storage: StorageLike | undefined,
    private readonly key: string,
    private readonly limit: number,
  ) {
    for (const id of this.load()) this.remember(id);
  }

  /** False when the id was there already. */
  add(id: string): boolean {
    if (this.set.has(id)) return false;
    this.remember(id);
    try {
      this.storage?.setItem(this.key, JSON.stringify(this.ids));
    } catch {
      // full or refused: remembered in memory only
    }
    return true;
  }

  private remember(id: string): void {
    this.set.add(id);
    this.ids.push(id);
    while (this.ids.length > this.limit) this.set.delete(this.ids.shift() as string);
  }

  private load(): string[] {
    try {
      const stored = JSON.parse(this.storage?.getItem(this.key) ?? '[]') as unknown;
      return Array.isArray(stored) ? stored.filter((id): id is string => typeof id === 'string') : [];
    } catch {
      return [];
    }
  }
}
