/**
 * The HTTP API, typed from docs/openapi.json (src/generated/openapi.ts, made by `npm run generate`).
 *
 *     const api = createHttpClient({ baseUrl, getToken });
 *     const job = await api.post('/jobs', { body: { marketplace: 'vinted', action: 'publish', product_id } });
 *     const same = await api.get('/jobs/{job_id}', { params: { job_id: job.id } });
 *
 * An answer that is not 2xx throws a CrosslistApiError.
 */
import type { components, paths } from './generated/openapi.js';

export type { components, paths };
export type Schemas = components['schemas'];

export type HttpMethod = 'get' | 'put' | 'post' | 'delete' | 'patch';

/** The paths that have this method. */
export type PathsWith<M extends HttpMethod> = {
  [P in keyof paths]: [NonNullable<paths[P][M]>] extends [never] ? never : P;
}[keyof paths];

export type Operation<P extends keyof paths, M extends HttpMethod> = NonNullable<paths[P][M]>;

type OpParameters<Op> = Op extends { parameters: infer Params } ? Params : never;
type PathParams<Op> = NonNullable<OpParameters<Op> extends { path?: infer Path } ? Path : never>;
type QueryParams<Op> = NonNullable<OpParameters<Op> extends { query?: infer Query } ? Query : never>;
type RequestBody<Op> = Op extends { requestBody: { content: { 'application/json': infer Body } } }
  ? Body
  : Op extends { requestBody?: { content: { 'application/json': infer Body } } }
    ? Body | undefined
    : never;

type SuccessStatus = 200 | 201 | 202 | 203 | 204 | 205 | 206;
type Responses<Op> = Op extends { responses: infer R } ? R : never;
type JsonContent<R> = R extends { content: { 'application/json': infer Body } } ? Body : undefined;

/** What a 2xx answer of the operation holds (undefined for one without a body, as 204). */
export type SuccessBody<Op> = {
  [S in keyof Responses<Op> & SuccessStatus]: JsonContent<Responses<Op>[S]>;
}[keyof Responses<Op> & SuccessStatus];

/** The options of a call: `params` (the path's {names}) when the path has some, `query`, `body`. */
export type RequestOptions<Op> = ([PathParams<Op>] extends [never]
  ? { params?: undefined }
  : { params: PathParams<Op> }) &
  ([QueryParams<Op>] extends [never] ? { query?: undefined } : { query?: QueryParams<Op> }) &
  ([RequestBody<Op>] extends [never]
    ? { body?: undefined }
    : undefined extends RequestBody<Op>
      ? { body?: RequestBody<Op> }
      : { body: RequestBody<Op> }) & {
    /** Aborts the request. */
    signal?: AbortSignal;
    /** More headers (Authorization and Content-Type are set by the client). */
    headers?: Record<string, string>;
  };

/** The options argument, optional when nothing in it is required. */
export type RequestArgs<Op> = {} extends RequestOptions<Op>
  ? [options?: RequestOptions<Op>]
  : [options: RequestOptions<Op>];

export interface ApiResponse<Body> {
  status: number;
  headers: HeadersLike;
  data: Body;
}

/** What the client needs of a `fetch` answer (the global Response has it). */
export interface ResponseLike {
  readonly status: number;
  readonly headers: HeadersLike;
  text(): Promise<string>;
}
export interface HeadersLike {
  get(name: string): string | null;
}
export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string; signal?: AbortSignal },
) => Promise<ResponseLike>;

export interface HttpClientOptions {
  /** The API's URL, e.g. http://127.0.0.1:8000 or https://{api}.execute-api.{region}.amazonaws.com/{stage}. */
  baseUrl: string;
  /** The bearer token (a JWT), asked before every request; null or undefined sends none. */
  getToken: () => string | null | undefined | Promise<string | null | undefined>;
  /** Default: the global fetch. */
  fetch?: FetchLike;
}

/** A refusal of the API: its HTTP status and, from its JSON body, `code`, `message` and `detail`. */
export class CrosslistApiError extends Error {
  override readonly name = 'CrosslistApiError';
  /** The HTTP status. */
  readonly status: number;
  /** The API's stable code (invalid_request, unauthorized, not_found, job_in_progress…), or `http_{status}`
   * when the body is not the API's error (e.g. API Gateway's own 429 or 503). */
  readonly code: string;
  /** A validation error's every problem, when the API gave them (else null). */
  readonly detail: unknown;
  /** The whole parsed body (some codes carry more, e.g. `missing`, `listings`, `job_id`), or its text. */
  readonly body: unknown;
  readonly method: string;
  readonly path: string;

  constructor(init: {
    status: number;
    code: string;
    message: string;
    detail?: unknown;
    body?: unknown;
    method: string;
    path: string;
  }) {
    super(init.message);
    this.status = init.status;
    this.code = init.code;
    this.detail = init.detail ?? null;
    this.body = init.body;
    this.method = init.method;
    this.path = init.path;
  }
}

export interface HttpClient {
  /** Call an operation; resolves with the 2xx answer's body. */
  request<M extends HttpMethod, P extends PathsWith<M>>(
    method: M,
    path: P,
    ...args: RequestArgs<Operation<P, M>>
  ): Promise<SuccessBody<Operation<P, M>>>;
  /** The same, with the answer's status and headers (e.g. POST /jobs: 200 for a job an idempotency key
   * already created, 202 for a new one). */
  requestWithResponse<M extends HttpMethod, P extends PathsWith<M>>(
    method: M,
    path: P,
    ...args: RequestArgs<Operation<P, M>>
  ): Promise<ApiResponse<SuccessBody<Operation<P, M>>>>;
  get<P extends PathsWith<'get'>>(path: P, ...args: RequestArgs<Operation<P, 'get'>>): Promise<SuccessBody<Operation<P, 'get'>>>;
  post<P extends PathsWith<'post'>>(path: P, ...args: RequestArgs<Operation<P, 'post'>>): Promise<SuccessBody<Operation<P, 'post'>>>;
  put<P extends PathsWith<'put'>>(path: P, ...args: RequestArgs<Operation<P, 'put'>>): Promise<SuccessBody<Operation<P, 'put'>>>;
  patch<P extends PathsWith<'patch'>>(path: P, ...args: RequestArgs<Operation<P, 'patch'>>): Promise<SuccessBody<Operation<P, 'patch'>>>;
  delete<P extends PathsWith<'delete'>>(path: P, ...args: RequestArgs<Operation<P, 'delete'>>): Promise<SuccessBody<Operation<P, 'delete'>>>;
}

interface LooseOptions {
  params?: Record<string, unknown>;
  query?: Record<string, unknown>;
  body?: unknown;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

export function createHttpClient(options: HttpClientOptions): HttpClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const doFetch: FetchLike =
    options.fetch ??
    ((url, init) => {
      const global = (globalThis as { fetch?: FetchLike }).fetch;
      if (global === undefined) throw new Error('no global fetch: pass `fetch` to createHttpClient');
      return global(url, init);
    });

  async function call(method: string, path: string, loose: LooseOptions = {}): Promise<ApiResponse<unknown>> {
    const url = baseUrl + fillPath(path, loose.params) + queryString(loose.query);
    const headers: Record<string, string> = { Accept: 'application/json', ...loose.headers };
    const token = await options.getToken();
    if (token) headers['Authorization'] = `Bearer ${token}`;
    const init: Parameters<FetchLike>[1] = { method: method.toUpperCase(), headers };
    if (loose.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(loose.body);
    }
    if (loose.signal !== undefined) init.signal = loose.signal;
    const response = await doFetch(url, init);
    const text = await response.text();
    const parsed = parseJson(text);
    if (response.status < 200 || response.status > 299) {
      throw apiError(response.status, parsed, text, init.method, path);
    }
    if (text === '') return { status: response.status, headers: response.headers, data: undefined };
    if (parsed === NOT_JSON) {
      throw new CrosslistApiError({
        status: response.status,
        code: 'invalid_response',
        message: `${init.method} ${path} answered ${response.status} with a body that is not JSON`,
        body: text,
        method: init.method,
        path,
      });
    }
    return { status: response.status, headers: response.headers, data: parsed };
  }

  const client = {
    request: async (method: string, path: string, loose?: LooseOptions) => (await call(method, path, loose)).data,
    requestWithResponse: (method: string, path: string, loose?: LooseOptions) => call(method, path, loose),
    get: async (path: string, loose?: LooseOptions) => (await call('get', path, loose)).data,
    post: async (path: string, loose?: LooseOptions) => (await call('post', path, loose)).data,
    put: async (path: string, loose?: LooseOptions) => (await call('put', path, loose)).data,
    patch: async (path: string, loose?: LooseOptions) => (await call('patch', path, loose)).data,
    delete: async (path: string, loose?: LooseOptions) => (await call('delete', path, loose)).data,
  };
  // The typed surface is checked at the call sites; inside, one untyped implementation serves every route.
  return client as unknown as HttpClient;
}

const NOT_JSON = Symbol('not JSON');

function parseJson(text: string): unknown {
  if (text === '') return NOT_JSON;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return NOT_JSON;
  }
}

function apiError(status: number, parsed: unknown, text: string, method: string, path: string): CrosslistApiError {
  const body = parsed === NOT_JSON ? text : parsed;
  if (typeof parsed === 'object' && parsed !== null) {
    const { code, message, detail } = parsed as { code?: unknown; message?: unknown; detail?: unknown };
    if (typeof code === 'string' && typeof message === 'string') {
      return new CrosslistApiError({ status, code, message, detail, body, method, path });
    }
    if (typeof message === 'string') {
      // Not the API's error: API Gateway's own ({"message": "Too Many Requests"}, "Unauthorized"…).
      return new CrosslistApiError({ status, code: `http_${status}`, message, body, method, path });
    }
  }
  const said = text.trim().slice(0, 200);
  return new CrosslistApiError({
    status,
    code: `http_${status}`,
    message: `${method} ${path} answered ${status}${said ? `: ${said}` : ''}`,
    body,
    method,
    path,
  });
}

/** The path with its {names} replaced by the encoded parameters. */
function fillPath(path: string, params: Record<string, unknown> | undefined): string {
  return path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value = params?.[name];
    if (value === undefined || value === null || value === '') {
      throw new TypeError(`${path}: the path parameter ${name} is missing`);
    }
    return encodeURIComponent(String(value));
  });
}

function queryString(query: Record<string, unknown> | undefined): string {
  if (query === undefined) return '';
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    for (const one of Array.isArray(value) ? value : [value]) {
      if (one !== undefined && one !== null) search.append(name, String(one));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}
