import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { createHttpClient, CrosslistApiError, type FetchLike, type Schemas } from '../../src/http.js';

interface Call {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string | undefined;
}

function fakeFetch(status: number, body: string, calls: Call[] = []): FetchLike {
  return async (url, init) => {
    calls.push({ url, method: init.method, headers: init.headers, body: init.body });
    return { status, headers: { get: () => 'application/json' }, text: async () => body };
  };
}

const JOB: Schemas['JobView'] = {
  id: '0b9f5f6e-4a53-4a8b-9a57-5c1e1c1f1a01',
  marketplace: 'vinted',
  action: 'publish',
  product_id: null,
  status: 'pending',
  wait_reason: null,
  waiting_for_job_id: null,
  wait_until: null,
  priority: 5,
  attempts: 0,
  max_attempts: 3,
  current_step: 0,
  total_steps: 3,
  accumulated_data: {},
  result: null,
  error: null,
  cancel_requested: false,
  created_at: '2030-06-03T09:00:00Z',
  started_at: null,
  completed_at: null,
  updated_at: '2030-06-03T09:00:00Z',
};

describe('createHttpClient', () => {
  it('sends the bearer token, JSON body, path parameters and query, and returns the body', async () => {
    const calls: Call[] = [];
    let tokens = 0;
    const api = createHttpClient({
      baseUrl: 'http://api.test/stage/',
      getToken: async () => `jwt-${++tokens}`,
      fetch: fakeFetch(202, JSON.stringify(JOB), calls),
    });
    const job = await api.post('/jobs', { body: { marketplace: 'vinted', action: 'publish', product_id: 'p 1' } });
    assert.equal(job.status, 'pending');
    await api.get('/jobs/{job_id}', { params: { job_id: 'a/b' } });
    await api.get('/jobs', { query: { status: 'running', limit: 10, cursor: null } });
    assert.deepEqual(
      calls.map((call) => `${call.method} ${call.url}`),
      [
        'POST http://api.test/stage/jobs',
        'GET http://api.test/stage/jobs/a%2Fb',
        'GET http://api.test/stage/jobs?status=running&limit=10',
      ],
    );
    assert.equal(calls[0]?.headers['Authorization'], 'Bearer jwt-1');
    assert.equal(calls[1]?.headers['Authorization'], 'Bearer jwt-2', 'a token asked for every request');
    assert.equal(calls[0]?.headers['Content-Type'], 'application/json');
    assert.deepEqual(JSON.parse(calls[0]?.body ?? ''), { marketplace: 'vinted', action: 'publish', product_id: 'p 1' });
    assert.equal(calls[1]?.body, undefined);
  });

  it('gives the status with requestWithResponse, and undefined for a 204', async () => {
    const created = createHttpClient({ baseUrl: 'http://api.test', getToken: () => 't', fetch: fakeFetch(202, JSON.stringify(JOB)) });
    const answer = await created.requestWithResponse('post', '/jobs', {
      body: { marketplace: 'vinted', action: 'publish', product_id: 'p' },
    });
    assert.equal(answer.status, 202);
    assert.equal(answer.data.id, JOB.id);
    const deleted = createHttpClient({ baseUrl: 'http://api.test', getToken: () => null, fetch: fakeFetch(204, '') });
    assert.equal(await deleted.delete('/marketplaces/{marketplace}', { params: { marketplace: 'ebay' } }), undefined);
  });

  it('throws CrosslistApiError with the API’s status, code, message and detail', async () => {
    const body = {
      statusCode: 422,
      code: 'invalid_request',
      message: 'price: must be positive',
      detail: [{ loc: ['body', 'price'], msg: 'must be positive', type: 'value_error' }],
    };
    const api = createHttpClient({ baseUrl: 'http://api.test', getToken: () => 't', fetch: fakeFetch(422, JSON.stringify(body)) });
    const error = await api
      .post('/products', { body: { title: 'x', price: '-1', image_urls: [] } as unknown as Schemas['ProductCreate'] })
      .then(
        () => assert.fail('no error'),
        (thrown: unknown) => thrown,
      );
    assert.ok(error instanceof CrosslistApiError);
    assert.equal(error.status, 422);
    assert.equal(error.code, 'invalid_request');
    assert.equal(error.message, 'price: must be positive');
    assert.deepEqual(error.detail, body.detail);
    assert.deepEqual(error.body, body);
    assert.equal(`${error.method} ${error.path}`, 'POST /products');
  });

  it('still throws a CrosslistApiError for a body that is not the API’s error', async () => {
    const throttled = createHttpClient({
      baseUrl: 'http://api.test',
      getToken: () => 't',
      fetch: fakeFetch(429, '{"message": "Too Many Requests"}'),
    });
    await assert.rejects(throttled.get('/products'), {
      name: 'CrosslistApiError',
      status: 429,
      code: 'http_429',
      message: 'Too Many Requests',
      detail: null,
    });
    const broken = createHttpClient({ baseUrl: 'http://api.test', getToken: () => 't', fetch: fakeFetch(502, '<html>Bad Gateway</html>') });
    await assert.rejects(broken.get('/products'), {
      status: 502,
      code: 'http_502',
      message: 'GET /products answered 502: <html>Bad Gateway</html>',
      body: '<html>Bad Gateway</html>',
    });
    const garbled = createHttpClient({ baseUrl: 'http://api.test', getToken: () => 't', fetch: fakeFetch(200, 'not json') });
    await assert.rejects(garbled.get('/products'), { code: 'invalid_response', status: 200 });
  });

  it('is typed by the OpenAPI document (checked by the compiler)', () => {
    const api = createHttpClient({ baseUrl: 'http://api.test', getToken: () => 't', fetch: fakeFetch(200, '{}') });
    const typed = async (): Promise<void> => {
      const page = await api.get('/jobs', { query: { status: 'failed' } });
      const ids: string[] = page.items.map((job) => job.id);
      void ids;
      // @ts-expect-error a path parameter is required
      await api.get('/jobs/{job_id}');
      // @ts-expect-error GET only
      await api.post('/jobs/{job_id}', { params: { job_id: 'x' } });
      // @ts-expect-error a body is required
      await api.post('/products');
      // @ts-expect-error no such query parameter
      await api.get('/jobs', { query: { colour: 'red' } });
      // @ts-expect-error no such route
      await api.get('/nowhere');
    };
    assert.equal(typeof typed, 'function');
  });
});
