import {
  relay,
  type Connection,
  type Executor,
  type ImageError,
  type JsonObject,
  type PluginCommandMessage,
  type Relay,
  type StorageLike,
} from '@crosslist/client';

/** What the crosslist browser extension answers for one call on Vinted. */
export interface ExtensionAnswer {
  /** Vinted's HTTP status; none when Vinted could not be reached. */
  status?: number;
  /** Vinted's JSON answer. */
  body?: unknown;
  /** Why it failed: Vinted's error text, or why Vinted could not be reached. */
  error?: string;
  /** Vinted's Retry-After (seconds). */
  retryAfter?: number;
  /** The photo could not be downloaded (Vinted was never called). */
  image?: { url: string; status?: number; error?: ImageError };
}

/** How the page reaches the extension (chrome.runtime.sendMessage, window.postMessage…). */
export type CallExtension = (
  call: Pick<PluginCommandMessage, 'method' | 'path' | 'payload'>,
  signal: AbortSignal,
) => Promise<ExtensionAnswer>;

/** The relay's executor: one call of the extension per command, its answer as the backend wants it. */
export function extensionExecutor(callExtension: CallExtension): Executor {
  return async (command, { signal }) => {
    const { method, path, payload } = command;
    const answer = await callExtension({ method, path, payload }, signal);
    if (answer.image !== undefined) {
      return {
        success: false,
        error: answer.error ?? `could not download image ${answer.image.url}`,
        error_kind: 'image',
        image_url: answer.image.url,
        image_status: answer.image.status ?? null,
        image_error: answer.image.error ?? null,
      };
    }
    if (answer.status !== undefined && answer.status >= 200 && answer.status < 300) {
      return { success: true, result: (answer.body ?? null) as JsonObject | null, status: answer.status };
    }
    return {
      success: false,
      error: answer.error ?? `Vinted answered ${answer.status}`,
      status: answer.status ?? null,
      retry_after: answer.retryAfter ?? null,
    };
  };
}

export interface RelaySetup {
  extensionVersion: string;
  /** The Vinted account the extension is logged in as. */
  vintedUserId: string;
  /** window.sessionStorage in a browser: a reloaded tab never runs a command twice. */
  sessionStorage?: StorageLike;
  log?: (line: string) => void;
}

/** Make this tab the one that runs the user's Vinted commands. */
export function startRelay(connection: Connection, callExtension: CallExtension, setup: RelaySetup): Relay {
  const log = setup.log ?? console.log;
  const bridge = relay(connection, extensionExecutor(callExtension), {
    extensionVersion: setup.extensionVersion,
    vintedUserId: setup.vintedUserId,
    sessionStorage: setup.sessionStorage,
  });
  bridge.on('status', (status) =>
    log(status.takes_commands ? 'this tab runs the Vinted commands' : 'this tab runs no command'),
  );
  bridge.on('answered', (command, result) => log(`${command.step}: ${result.success ? 'done' : result.error}`));
  bridge.on('command_lost', ({ command }) =>
    log(`${command.step}: the connection closed before its answer; the backend gives it to a ready tab`),
  );
  bridge.on('refused', (error, command) => log(`answer to ${command?.step} refused: ${error.code}`));
  return bridge;
}
