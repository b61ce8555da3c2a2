// "Act as the browser extension": what the crosslist extension does with a `plugin.command`, against the
// devstack's fake Vinted over HTTP (/dev/vinted/{user}/api/v2/...) instead of vinted.fr. The answer is turned
// into the fields of a `plugin_result` as the real extension reports them (docs/websocket-protocol.md); the
// client's `relay` runs this executor, at most once per command, and answers on the command's socket.
import type { Executor, ExecutorResult, JsonObject } from '@crosslist/client';

const PHOTOS_PATH = '/api/v2/photos';
const MAX_IMAGE_BYTES = 20 * 1024 * 1024;
const MAX_ERROR_LENGTH = 2000;

type Failure = Extract<ExecutorResult, { success: false }>;

/** Runs Vinted calls on the devstack's fake Vinted of `user` (at `origin`, the devstack's HTTP API). */
export function fakeVintedExecutor(origin: string, user: string, log: (line: string) => void): Executor {
  const base = `${origin}/dev/vinted/${encodeURIComponent(user)}`;
  return async (call, { signal }): Promise<ExecutorResult> => {
    const method = call.method.toUpperCase();
    if (method === 'POST' && call.path.split('?')[0] === PHOTOS_PATH) {
      const failed = await downloadFailure(call.payload, signal);
      if (failed) {
        log(`extension: ${failed.error}`);
        return failed;
      }
    }
    let response: Response;
    try {
      response = await fetch(base + call.path, {
        method,
        headers: method === 'GET' || method === 'HEAD' ? {} : { 'Content-Type': 'application/json' },
        body: method === 'GET' || method === 'HEAD' ? undefined : JSON.stringify(call.payload ?? {}),
        signal,
      });
    } catch (error) {
      if (signal?.aborted) throw error;
      return { success: false, error: `network error: could not reach Vinted (${String(error)})` };
    }
    const text = await response.text();
    log(`extension: ${method} ${call.path} → ${response.status}`);
    if (response.ok) {
      return { success: true, result: parseObject(text), status: response.status };
    }
    const outcome: Failure = {
      success: false,
      error: (text || `Vinted answered ${response.status}`).slice(0, MAX_ERROR_LENGTH),
      status: response.status,
    };
    const retryAfter = Number(response.headers.get('Retry-After'));
    if (response.headers.has('Retry-After') && Number.isFinite(retryAfter)) outcome.retry_after = retryAfter;
    return outcome;
  };
}

function parseObject(text: string): JsonObject {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonObject) : {};
  } catch {
    return {};
  }
}

/** The extension downloads a photo before uploading it: why it could not, as it reports it (undefined: it could). */
async function downloadFailure(payload: unknown, signal?: AbortSignal): Promise<Failure | undefined> {
  const imageUrl = (payload as { image_url?: unknown } | null)?.image_url;
  if (typeof imageUrl !== 'string' || imageUrl === '') return undefined; // Vinted refuses the payload itself
  const failure = (why: string, fields: Partial<Failure>): Failure => ({
    success: false,
    error: `could not download image ${imageUrl}: ${why}`.slice(0, MAX_ERROR_LENGTH),
    error_kind: 'image',
    image_url: imageUrl,
    ...fields,
  });
  let url: URL;
  try {
    url = new URL(imageUrl);
  } catch {
    return failure('not a URL', { image_error: 'unsupported_url' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return failure('only http(s) image URLs are supported', { image_error: 'unsupported_url' });
  }
  let response: Response;
  try {
    response = await fetch(url, { signal });
  } catch (error) {
    if (signal?.aborted) throw error;
    // The extension may read any host; a page only those that allow it (CORS). An image this page may not read
    // is still fetched blind, and taken as there when something answers.
    try {
      await fetch(url, { mode: 'no-cors', signal });
      return undefined;
    } catch {
      if (signal?.aborted) throw error;
      return failure(String(error), { image_error: 'connection_failed' });
    }
  }
  if (!response.ok) return failure(`HTTP ${response.status}`, { image_status: response.status });
  const image = await response.blob();
  if (image.size === 0 || (image.type !== '' && !image.type.startsWith('image/'))) {
    return failure(`not an image (${image.type || 'empty'})`, { image_error: 'not_an_image' });
  }
  if (image.size > MAX_IMAGE_BYTES) return failure('the image is too large', { image_error: 'too_large' });
  return undefined;
}
