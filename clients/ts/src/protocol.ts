/**
 * The WebSocket protocol between the web app and the backend, as docs/websocket-protocol.md describes it:
 * a type for every message, and the same as data (SERVER_MESSAGES, CLIENT_MESSAGES) that a test checks
 * against the document's tables. The compiler checks that the data and the types agree.
 */

export type Marketplace = 'vinted' | 'ebay' | 'etsy';

export type JobStatus =
  | 'pending'
  | 'running'
  | 'waiting'
  | 'waiting_for_plugin'
  | 'completed'
  | 'failed'
  | 'cancelled';

/** The statuses a job never leaves. */
export const FINAL_JOB_STATUSES = ['completed', 'failed', 'cancelled'] as const satisfies readonly JobStatus[];
export type FinalJobStatus = (typeof FINAL_JOB_STATUSES)[number];

/** Why a job waits (`job.waiting`'s `reason`, a job's `wait_reason`). */
export type WaitReason =
  | 'pacing'
  | 'backoff'
  | 'queued'
  | 'rate_limited'
  | 'reauth_required'
  | 'challenge'
  | 'no_plugin'
  | 'plugin_not_ready'
  | 'plugin_logged_out';

/** A job's error as the job stores it. */
export interface JobError {
  code: string;
  message: string;
  [more: string]: unknown;
}

/** The codes of `error` messages (a string the backend adds later is passed on as it is). */
export type ErrorCode =
  | 'invalid_message'
  | 'rate_limited'
  | 'too_many_connections'
  | 'unknown_request'
  | 'forbidden'
  | 'already_resolved'
  | 'expired'
  | 'unavailable'
  | (string & {});

export type JsonObject = { [key: string]: unknown };

// ---------------------------------------------------------------------------- backend → web app

export interface JobProgressMessage {
  type: 'job.progress';
  job_id: string;
  batch_id: string | null;
  step: string;
  /** Steps done. */
  current_step: number;
  total_steps: number;
  message: string;
}

export interface PluginCommandMessage {
  type: 'plugin.command';
  request_id: string;
  job_id: string;
  step: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  payload: JsonObject | null;
  timeout_ms: number;
  /** The job's progress when its previous step just ended: this tab is not sent it separately. */
  progress?: JobProgressMessage;
}

export interface BatchProgressMessage {
  type: 'batch.progress';
  batch_id: string;
  /** Jobs per status. */
  counts: Partial<Record<JobStatus, number>>;
}

export interface JobCompletedMessage {
  type: 'job.completed';
  job_id: string;
  result: JsonObject;
}

export interface JobRetryingMessage {
  type: 'job.retrying';
  job_id: string;
  /** The coming attempt. */
  attempt: number;
  /** ISO 8601. */
  next_attempt_at: string;
  error: JobError;
}

export interface JobWaitingMessage {
  type: 'job.waiting';
  job_id: string;
  reason: WaitReason;
  /** ISO 8601, or null: until the extension is back. */
  until: string | null;
}

/** Always final: a coming retry is `job.retrying`. */
export interface JobFailedMessage {
  type: 'job.failed';
  job_id: string;
  error: JobError;
}

/** A job as `jobs.active` shows it. */
export interface ActiveJob {
  job_id: string;
  marketplace: Marketplace;
  action: string;
  product_id: string | null;
  batch_id: string | null;
  status: JobStatus;
  wait_reason: WaitReason | null;
  wait_until: string | null;
  /** Reason `queued`: the job it waits for. */
  waiting_for_job_id: string | null;
  /** The step it is at, or null. */
  step: string | null;
  current_step: number;
  total_steps: number;
  attempts: number;
  max_attempts: number;
  cancel_requested: boolean;
  error: JobError | null;
}

export interface JobsActiveMessage {
  type: 'jobs.active';
  /** Oldest first, at most 100. */
  jobs: ActiveJob[];
  truncated: boolean;
}

/** The backend recorded this tab's `plugin_status`. */
export interface PluginStatusRecordedMessage {
  type: 'plugin.status';
  ready: boolean;
  extension_version: string | null;
  vinted_logged_in: boolean;
  challenge: boolean;
  takes_commands: boolean;
}

export interface ListingSoldMessage {
  type: 'listing.sold';
  marketplace: Marketplace;
  product_id: string;
  external_id: string | null;
  order_id: string;
  price: string;
  currency: string;
}

export interface MarketplaceReauthRequiredMessage {
  type: 'marketplace.reauth_required';
  marketplace: 'ebay' | 'etsy';
}

export interface JobCancelledMessage {
  type: 'job.cancelled';
  job_id: string;
}

/** A message from this connection was refused. */
export interface ErrorMessage {
  type: 'error';
  code: ErrorCode;
  message: string;
  request_id: string | null;
}

/** The answer to this connection's `ping`. */
export interface PongMessage {
  type: 'pong';
}

export type ServerMessage =
  | PluginCommandMessage
  | JobProgressMessage
  | BatchProgressMessage
  | JobCompletedMessage
  | JobRetryingMessage
  | JobWaitingMessage
  | JobFailedMessage
  | JobsActiveMessage
  | PluginStatusRecordedMessage
  | ListingSoldMessage
  | MarketplaceReauthRequiredMessage
  | JobCancelledMessage
  | ErrorMessage
  | PongMessage;

export type ServerMessageType = ServerMessage['type'];
export type ServerMessageOf<T extends ServerMessageType> = Extract<ServerMessage, { type: T }>;

/** How a job ended: what `watchJob` settles with. */
export type JobFinalMessage = JobCompletedMessage | JobFailedMessage | JobCancelledMessage;

// ---------------------------------------------------------------------------- web app → backend

export interface PluginStatusAction {
  action: 'plugin_status';
  ready: boolean;
  /** At most 50 characters. */
  extension_version?: string | null;
  /** Default true. */
  vinted_logged_in?: boolean;
  /** Default false. */
  challenge?: boolean;
  /** 1–40 of 0-9A-Za-z_- */
  vinted_user_id?: string | null;
}

export interface ResumeAction {
  action: 'resume';
}

export interface PingAction {
  action: 'ping';
}

/** Why a photo could not be downloaded, when its status does not say. */
export type ImageError =
  | 'unknown_host'
  | 'not_an_image'
  | 'too_large'
  | 'unsupported_url'
  | 'timeout'
  | 'connection_failed';

export interface PluginResultAction {
  action: 'plugin_result';
  request_id: string;
  success: boolean;
  /** Vinted's JSON answer (a success). */
  result?: JsonObject | null;
  /** Vinted's error text, or the extension's own reason (a failure; at most 2000 characters). */
  error?: string | null;
  /** Vinted's HTTP status, whenever Vinted answered. */
  status?: number | null;
  /** Vinted's Retry-After in seconds (0–86400). */
  retry_after?: number | null;
  /** "image": the photo could not be downloaded (Vinted was never called). */
  error_kind?: 'image' | null;
  image_url?: string | null;
  image_status?: number | null;
  image_error?: ImageError | null;
}

export type ClientMessage = PluginStatusAction | ResumeAction | PingAction | PluginResultAction;
export type ClientAction = ClientMessage['action'];

// ---------------------------------------------------------------------------- the same, as data

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;

/**
 * Backend → web app: each message type and its fields (`type` aside), as the table of "Backend → web app"
 * in docs/websocket-protocol.md lists them.
 */
export const SERVER_MESSAGES = {
  'plugin.command': ['request_id', 'job_id', 'step', 'method', 'path', 'payload', 'timeout_ms', 'progress'],
  'job.progress': ['job_id', 'batch_id', 'step', 'current_step', 'total_steps', 'message'],
  'batch.progress': ['batch_id', 'counts'],
  'job.completed': ['job_id', 'result'],
  'job.retrying': ['job_id', 'attempt', 'next_attempt_at', 'error'],
  'job.waiting': ['job_id', 'reason', 'until'],
  'job.failed': ['job_id', 'error'],
  'jobs.active': ['jobs', 'truncated'],
  'plugin.status': ['ready', 'extension_version', 'vinted_logged_in', 'challenge', 'takes_commands'],
  'listing.sold': ['marketplace', 'product_id', 'external_id', 'order_id', 'price', 'currency'],
  'marketplace.reauth_required': ['marketplace'],
  'job.cancelled': ['job_id'],
  error: ['code', 'message', 'request_id'],
  pong: [],
} as const satisfies {
  readonly [K in ServerMessageType]: readonly Exclude<keyof ServerMessageOf<K>, 'type'>[];
};

/** The fields of each job of `jobs.active`. */
export const ACTIVE_JOB_FIELDS = [
  'job_id',
  'marketplace',
  'action',
  'product_id',
  'batch_id',
  'status',
  'wait_reason',
  'wait_until',
  'waiting_for_job_id',
  'step',
  'current_step',
  'total_steps',
  'attempts',
  'max_attempts',
  'cancel_requested',
  'error',
] as const satisfies readonly (keyof ActiveJob)[];

/** Web app → backend: each action and the fields it may carry (`action` aside). */
export const CLIENT_MESSAGES = {
  plugin_status: ['ready', 'extension_version', 'vinted_logged_in', 'challenge', 'vinted_user_id'],
  resume: [],
  ping: [],
  plugin_result: [
    'request_id',
    'success',
    'result',
    'error',
    'status',
    'retry_after',
    'error_kind',
    'image_url',
    'image_status',
    'image_error',
  ],
} as const satisfies { readonly [K in ClientAction]: readonly Exclude<keyof Extract<ClientMessage, { action: K }>, 'action'>[] };

// Compile-time: the lists above name every field of their type (`satisfies` alone would allow a shorter list).
type ServerFieldsAgree = {
  [K in ServerMessageType]: Same<Exclude<keyof ServerMessageOf<K>, 'type'>, (typeof SERVER_MESSAGES)[K][number]>;
};
type ClientFieldsAgree = {
  [K in ClientAction]: Same<
    Exclude<keyof Extract<ClientMessage, { action: K }>, 'action'>,
    (typeof CLIENT_MESSAGES)[K][number]
  >;
};
export type ProtocolDataAgrees = Assert<
  | ServerFieldsAgree[ServerMessageType]
  | ClientFieldsAgree[ClientAction]
  | Same<keyof ActiveJob, (typeof ACTIVE_JOB_FIELDS)[number]>
>;

export const SERVER_MESSAGE_TYPES = Object.keys(SERVER_MESSAGES) as ServerMessageType[];

/** Whether a parsed frame looks like a message of this protocol (an object with a known `type`). */
export function isServerMessage(value: unknown): value is ServerMessage {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { type?: unknown }).type === 'string' &&
    Object.prototype.hasOwnProperty.call(SERVER_MESSAGES, (value as { type: string }).type)
  );
}

export function isFinalStatus(status: string): status is FinalJobStatus {
  return (FINAL_JOB_STATUSES as readonly string[]).includes(status);
}
