// Retry, idempotency-key and error-mapping behaviour of the server client, against a tiny
// fake HTTP server whose answers each test scripts.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createClient, OpenPartnerError, parseRetryAfter, collect } from '@openpartner/sdk/server';

/** A fake API: `script` is a list of handlers, one per incoming request, in order. */
function fakeServer() {
  const calls = [];
  let script = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      calls.push({ method: req.method, url: req.url, headers: req.headers, body, at: Date.now() });
      const h = script.shift();
      if (!h) {
        res.writeHead(500, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ error: 'unscripted' }));
      }
      h(req, res, body);
    });
  });
  return {
    calls,
    set(handlers) {
      script = handlers;
      calls.length = 0;
    },
    async start() {
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      return `http://127.0.0.1:${server.address().port}/api/t/demo`;
    },
    stop: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}
const json = (status, obj, headers = {}) => (req, res) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(obj));
};
const hangUp = () => (req, res) => res.socket.destroy();

describe('retries', () => {
  const fake = fakeServer();
  let baseUrl;
  let op;
  before(async () => {
    baseUrl = await fake.start();
    op = createClient({ baseUrl, apiKey: 'op_test', retryBaseDelayMs: 20, retryMaxDelayMs: 80 });
  });
  after(() => fake.stop());

  test('429 with Retry-After (seconds) is retried after that delay, then succeeds', async () => {
    fake.set([
      json(429, { error: 'rate_limited', detail: 'slow down' }, { 'retry-after': '1' }),
      json(200, { data: [], nextCursor: null }),
    ]);
    const page = await op.partners.list();
    assert.deepEqual(page, { data: [], nextCursor: null });
    assert.equal(fake.calls.length, 2);
    const waited = fake.calls[1].at - fake.calls[0].at;
    assert.ok(waited >= 950, `waited ${waited} ms, Retry-After said 1 s`);
    assert.equal(fake.calls[0].headers.authorization, 'Bearer op_test');
  });

  test('429 with Retry-After as an HTTP date is honoured', async () => {
    const when = new Date(Date.now() + 1500).toUTCString(); // second precision: 0.5 to 1.5 s away
    fake.set([json(429, { error: 'rate_limited' }, { 'retry-after': when }), json(200, { ok: true })]);
    const r = await op.request('GET', '/auth/introspect');
    assert.deepEqual(r, { ok: true });
    const waited = fake.calls[1].at - fake.calls[0].at;
    assert.ok(waited >= 400, `waited ${waited} ms for ${when}`);
  });

  test('429 on a POST without an Idempotency-Key is still retried (the request was refused, not run)', async () => {
    fake.set([json(429, { error: 'rate_limited' }, { 'retry-after': '0' }), json(201, { id: 'p1' })]);
    const r = await op.request('POST', '/partners', { email: 'a@b.c', name: 'A' }, { idempotencyKey: false });
    assert.deepEqual(r, { id: 'p1' });
    assert.equal(fake.calls.length, 2);
    assert.equal(fake.calls[0].headers['idempotency-key'], undefined);
  });

  test('a Retry-After longer than maxRetryAfterMs is not waited for', async () => {
    const quick = createClient({ baseUrl, apiKey: 'k', maxRetryAfterMs: 500 });
    fake.set([json(429, { error: 'rate_limited' }, { 'retry-after': '30' })]);
    const t0 = Date.now();
    await assert.rejects(quick.partners.list(), (e) => e instanceof OpenPartnerError && e.status === 429 && e.code === 'rate_limited');
    assert.ok(Date.now() - t0 < 400);
    assert.equal(fake.calls.length, 1);
  });

  test('503 on a GET is retried with backoff, then succeeds', async () => {
    fake.set([json(503, { error: 'unavailable' }), json(502, { error: 'bad_gateway' }), json(200, { id: 'x' })]);
    const r = await op.partners.get('x');
    assert.deepEqual(r, { id: 'x' });
    assert.equal(fake.calls.length, 3);
    assert.ok(fake.calls.every((c) => c.method === 'GET' && c.url === '/api/t/demo/partners/x'));
  });

  test('a GET gives up after maxRetries and throws the last error', async () => {
    fake.set([json(503, { error: 'a' }), json(503, { error: 'b' }), json(500, { error: 'internal', detail: 'boom' })]);
    await assert.rejects(op.partners.get('x'), (e) => {
      assert.ok(e instanceof OpenPartnerError);
      assert.equal(e.status, 500);
      assert.equal(e.code, 'internal');
      assert.equal(e.detail, 'boom');
      return true;
    });
    assert.equal(fake.calls.length, 3); // 1 + maxRetries (2)
  });

  test('a POST without an Idempotency-Key is NOT retried on 503', async () => {
    fake.set([json(503, { error: 'unavailable' }), json(201, { id: 'never' })]);
    await assert.rejects(
      op.partners.create({ email: 'a@b.c', name: 'A' }, { idempotencyKey: false }),
      (e) => e.status === 503 && e.code === 'unavailable',
    );
    assert.equal(fake.calls.length, 1);
    assert.equal(fake.calls[0].headers['idempotency-key'], undefined);
  });

  test('a POST is sent with a random Idempotency-Key by default, the same on every retry', async () => {
    fake.set([json(503, { error: 'unavailable' }), hangUp(), json(201, { id: 'p' })]);
    const r = await op.partners.create({ email: 'a@b.c', name: 'A' });
    assert.deepEqual(r, { id: 'p' });
    assert.equal(fake.calls.length, 3);
    const keys = fake.calls.map((c) => c.headers['idempotency-key']);
    assert.match(keys[0], /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.deepEqual(new Set(keys).size, 1);
    assert.deepEqual(JSON.parse(fake.calls[2].body), { email: 'a@b.c', name: 'A' });
    // Another call gets another key.
    fake.set([json(201, { id: 'q' })]);
    await op.partners.create({ email: 'b@b.c', name: 'B' });
    assert.notEqual(fake.calls[0].headers['idempotency-key'], keys[0]);
  });

  test("the caller's own Idempotency-Key is sent as given", async () => {
    fake.set([json(200, { ok: true })]);
    await op.attribution.trackEvent({ userId: 'u', type: 'signup' }, { idempotencyKey: 'order-42' });
    assert.equal(fake.calls[0].headers['idempotency-key'], 'order-42');
  });

  test('409 idempotency_key_in_progress is retried; other 4xx are not', async () => {
    fake.set([json(409, { error: 'idempotency_key_in_progress' }), json(201, { id: 'done' })]);
    assert.deepEqual(await op.payouts.run(), { id: 'done' });
    assert.equal(fake.calls.length, 2);
    fake.set([json(409, { error: 'email_taken', detail: 'taken', field: 'email' })]);
    await assert.rejects(op.partners.create({ email: 'a@b.c', name: 'A' }), (e) => e.code === 'email_taken' && e.field === 'email');
    assert.equal(fake.calls.length, 1);
  });

  test('network errors are retried for a GET and reported as network_error when they persist', async () => {
    fake.set([hangUp(), json(200, { ok: 1 })]);
    assert.deepEqual(await op.request('GET', '/auth/me'), { ok: 1 });
    fake.set([hangUp(), hangUp(), hangUp()]);
    await assert.rejects(op.request('GET', '/auth/me'), (e) => e instanceof OpenPartnerError && e.status === 0 && e.code === 'network_error');
    assert.equal(fake.calls.length, 3);
  });

  test('timeouts abort the attempt and count as network failures', async () => {
    const slow = (req, res) => setTimeout(() => json(200, { late: true })(req, res), 400);
    fake.set([slow, json(200, { fast: true })]);
    const r = await op.request('GET', '/x', undefined, { timeoutMs: 100 });
    assert.deepEqual(r, { fast: true });
    fake.set([slow]);
    await assert.rejects(op.request('GET', '/x', undefined, { timeoutMs: 100, maxRetries: 0 }), (e) => e.code === 'timeout');
  });

  test('maxRetries: 0 disables retries', async () => {
    fake.set([json(503, { error: 'unavailable' })]);
    await assert.rejects(op.partners.list(undefined, { maxRetries: 0 }), (e) => e.status === 503);
    assert.equal(fake.calls.length, 1);
  });

  test('an AbortSignal cancels a wait between retries', async () => {
    fake.set([json(429, { error: 'rate_limited' }, { 'retry-after': '5' })]);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const t0 = Date.now();
    await assert.rejects(op.partners.list(undefined, { signal: ac.signal }), (e) => e.code === 'aborted');
    assert.ok(Date.now() - t0 < 2000);
  });
});

describe('requests and errors', () => {
  const fake = fakeServer();
  let op;
  before(async () => {
    op = createClient({ baseUrl: `${await fake.start()}/`, apiKey: 'op_k', maxRetries: 0 });
  });
  after(() => fake.stop());

  test('paths are encoded, query values skipped when undefined, arrays repeated', async () => {
    fake.set([json(200, { data: [], nextCursor: null })]);
    await op.commissions.list({ status: 'approved', partnerId: undefined, limit: 5 });
    assert.equal(fake.calls[0].url, '/api/t/demo/commissions?status=approved&limit=5');
    fake.set([json(200, {})]);
    await op.partners.get('a/b c');
    assert.equal(fake.calls[0].url, '/api/t/demo/partners/a%2Fb%20c');
    fake.set([json(200, {})]);
    await op.request('GET', '/x', undefined, { query: { a: ['1', '2'] } });
    assert.equal(fake.calls[0].url, '/api/t/demo/x?a=1&a=2');
    fake.set([json(200, {})]);
    await op.webhooks.delete('w1', { hard: true });
    assert.equal(fake.calls[0].url, '/api/t/demo/webhooks/w1?hard=1');
    assert.equal(fake.calls[0].method, 'DELETE');
    fake.set([json(200, {})]);
    await op.webhooks.test('w1', { event: 'commission.paid' });
    assert.equal(fake.calls[0].url, '/api/t/demo/webhooks/w1/test?event=commission.paid');
  });

  test('errors carry status, code, detail, field, the body and the request id', async () => {
    fake.set([json(400, { error: 'invalid_body', detail: 'name is required', field: 'name' }, { 'x-request-id': 'req-1' })]);
    const err = await op.partners.create({ email: 'a@b.c' }).catch((e) => e);
    assert.ok(err instanceof OpenPartnerError);
    assert.ok(err instanceof Error);
    assert.equal(err.name, 'OpenPartnerError');
    assert.equal(err.status, 400);
    assert.equal(err.code, 'invalid_body');
    assert.equal(err.detail, 'name is required');
    assert.equal(err.field, 'name');
    assert.equal(err.requestId, 'req-1');
    assert.deepEqual(err.body, { error: 'invalid_body', detail: 'name is required', field: 'name' });
    assert.match(err.message, /400 invalid_body: name is required/);
  });

  test('an error body without detail is the detail (as the original SDK did); non-JSON bodies are kept as text', async () => {
    fake.set([json(403, { error: 'forbidden_scope', required: 'partners:read' })]);
    const e1 = await op.partners.list().catch((e) => e);
    assert.deepEqual(e1.detail, { error: 'forbidden_scope', required: 'partners:read' });
    fake.set([(req, res) => { res.writeHead(502, { 'content-type': 'text/html' }); res.end('<h1>bad gateway</h1>'); }]);
    const e2 = await op.partners.list().catch((e) => e);
    assert.equal(e2.status, 502);
    assert.equal(e2.code, undefined);
    assert.equal(e2.body, '<h1>bad gateway</h1>');
  });

  test('requestWithResponse exposes status, headers and idempotent replays', async () => {
    fake.set([json(201, { id: 'p' }, { 'idempotent-replayed': 'true', 'x-request-id': 'r9' })]);
    const r = await op.requestWithResponse('POST', '/partners', { email: 'x@y.z', name: 'X' }, { idempotencyKey: 'k1' });
    assert.equal(r.status, 201);
    assert.equal(r.replayed, true);
    assert.equal(r.requestId, 'r9');
    assert.equal(r.idempotencyKey, 'k1');
    assert.deepEqual(r.data, { id: 'p' });
  });

  test('cursor iteration follows nextCursor and yields data items in order', async () => {
    fake.set([
      json(200, { data: [{ id: 1 }, { id: 2 }], partners: [{ id: 1 }, { id: 2 }], nextCursor: 'c1' }),
      json(200, { data: [{ id: 3 }], nextCursor: 'c2' }),
      json(200, { data: [], nextCursor: null }),
    ]);
    const items = await collect(op.partners.iterate({ limit: 2, status: 'active' }));
    assert.deepEqual(items.map((i) => i.id), [1, 2, 3]);
    assert.deepEqual(fake.calls.map((c) => c.url), [
      '/api/t/demo/partners?limit=2&status=active',
      '/api/t/demo/partners?limit=2&status=active&cursor=c1',
      '/api/t/demo/partners?limit=2&status=active&cursor=c2',
    ]);
    // Stopping early fetches no further page.
    fake.set([json(200, { data: [{ id: 1 }, { id: 2 }], nextCursor: 'c1' }), json(200, { data: [{ id: 3 }], nextCursor: null })]);
    assert.deepEqual((await collect(op.paginate('/partners'), 1)).length, 1);
    assert.equal(fake.calls.length, 1);
  });

  test('a repeated nextCursor stops iteration with an error instead of looping', async () => {
    fake.set([json(200, { data: [{ id: 1 }], nextCursor: 'same' }), json(200, { data: [{ id: 1 }], nextCursor: 'same' })]);
    await assert.rejects(collect(op.partners.iterate()), (e) => e.code === 'invalid_response');
  });

  test('refund sends a refund event with metadata.refundOf', async () => {
    fake.set([json(201, { ok: true })]);
    await op.refund({ userId: 'u', refundOf: 'inv_1', value: '5.00', eventId: 'ref_1', metadata: { why: 'x' } });
    assert.deepEqual(JSON.parse(fake.calls[0].body), {
      userId: 'u',
      value: '5.00',
      eventId: 'ref_1',
      type: 'refund',
      metadata: { why: 'x', refundOf: 'inv_1' },
    });
  });

  test('routerUrl derives the click router URL in both modes', () => {
    assert.equal(op.routerUrl('ann-1'), `${op.baseUrl.replace('/api/t/demo', '')}/r/demo/ann-1`);
    const single = createClient({ baseUrl: 'https://p.example.com/api', apiKey: 'k' });
    assert.equal(single.links.url('a b'), 'https://p.example.com/r/a%20b');
  });

  test('config errors', () => {
    assert.throws(() => createClient({ baseUrl: 'nope' }), (e) => e.code === 'config_missing');
  });

  test('parseRetryAfter', () => {
    assert.equal(parseRetryAfter('2'), 2000);
    assert.equal(parseRetryAfter('0'), 0);
    assert.equal(parseRetryAfter(null), null);
    assert.equal(parseRetryAfter('soon'), null);
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:03 GMT', now), 3000);
    assert.equal(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now), 0);
  });
});
