// The package as consumers get it: the exports map (import and require), the <script>
// build's global, the published type declarations, and the original SDK's server class.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import vm from 'node:vm';
import { fileURLToPath } from 'node:url';
import * as browserEsm from '@openpartner/sdk';
import * as serverEsm from '@openpartner/sdk/server';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('../..', import.meta.url));

test('import and require resolve both entry points', () => {
  const browserCjs = require('@openpartner/sdk');
  const serverCjs = require('@openpartner/sdk/server');
  for (const mod of [browserEsm, browserCjs]) {
    assert.equal(typeof mod.OpenPartner.init, 'function');
    assert.equal(typeof mod.OpenPartnerError, 'function');
  }
  for (const mod of [serverEsm, serverCjs]) {
    for (const name of ['createClient', 'OpenPartnerServer', 'verifyWebhook', 'verifyWebhookAsync', 'OpenPartnerError', 'collect']) {
      assert.equal(typeof mod[name], 'function', name);
    }
  }
  // One error class as far as instanceof is concerned, whichever bundle threw it.
  const e = new serverCjs.OpenPartnerError('m', 404, 'not_found');
  assert.ok(e instanceof browserEsm.OpenPartnerError);
  assert.ok(e instanceof serverEsm.OpenPartnerError);
  assert.ok(!(new Error('x') instanceof serverEsm.OpenPartnerError));
});

test('the CommonJS build verifies webhooks too', () => {
  const { verifyWebhook } = require('@openpartner/sdk/server');
  const crypto = require('node:crypto');
  const secret = 'whsec_' + crypto.randomBytes(24).toString('base64');
  const ts = Math.floor(Date.now() / 1000);
  const sig = crypto.createHmac('sha256', secret).update(`${ts}.{}`).digest('hex');
  assert.equal(verifyWebhook('{}', { 'x-openpartner-timestamp': String(ts), 'x-openpartner-signature': sig }, secret), true);
});

test('the <script> build defines window.OpenPartner and captures the cref', async () => {
  const code = await readFile(`${root}/dist/openpartner.global.js`, 'utf8');
  assert.ok(code.length < 8 * 1024, `${code.length} bytes`);
  const store = new Map();
  const ctx = {
    location: { search: '?utm=x&cref=01KABCDEF0123456789ABCDEFG', protocol: 'https:' },
    document: { cookie: '' },
    URLSearchParams,
    localStorage: { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v), removeItem: (k) => store.delete(k) },
  };
  ctx.globalThis = ctx;
  vm.runInNewContext(code, ctx);
  assert.equal(typeof ctx.OpenPartner.init, 'function');
  assert.equal(ctx.OpenPartner.OpenPartner, ctx.OpenPartner);
  assert.equal(ctx.OpenPartner.VERSION, JSON.parse(await readFile(`${root}/package.json`, 'utf8')).version);
  const op = ctx.OpenPartner.init({ apiUrl: 'https://x.example/api/t/acme' });
  assert.equal(op.getCref(), '01KABCDEF0123456789ABCDEFG');
  assert.equal(store.get('openpartner:cref'), '01KABCDEF0123456789ABCDEFG');
  assert.match(ctx.document.cookie, /^_cref=01KABCDEF0123456789ABCDEFG; Path=\/; Max-Age=7776000; SameSite=Lax; Secure$/);
});

test('the browser part ignores a cref that could not be a click id', () => {
  const store = new Map();
  const ctx = {
    location: { search: '?cref=%3Cscript%3E;%20Domain=evil', protocol: 'http:' },
    document: { cookie: '' },
    URLSearchParams,
    localStorage: { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v), removeItem: (k) => store.delete(k) },
  };
  ctx.globalThis = ctx;
  return readFile(`${root}/dist/openpartner.global.js`, 'utf8').then((code) => {
    vm.runInNewContext(code, ctx);
    const op = ctx.OpenPartner.init({ apiUrl: 'https://x.example/api' });
    assert.equal(op.getCref(), null);
    assert.equal(ctx.document.cookie, '');
    assert.equal(store.size, 0);
  });
});

test('the published declarations type-check for ES module and CommonJS consumers', () => {
  const tsc = `${root}/node_modules/typescript/bin/tsc`;
  try {
    execFileSync(process.execPath, [tsc, '-p', `${root}/test/types/tsconfig.json`], { encoding: 'utf8', stdio: 'pipe' });
  } catch (e) {
    assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`);
  }
});

test('OpenPartnerServer (the original SDK class) keeps its constructor, methods and errors', async () => {
  const { OpenPartnerServer, OpenPartnerError } = serverEsm;
  assert.throws(() => new OpenPartnerServer({ apiUrl: '', apiKey: 'k' }), (e) => e instanceof OpenPartnerError && e.code === 'config_missing');
  assert.throws(() => new OpenPartnerServer({ apiUrl: 'https://x', apiKey: '' }), (e) => e.code === 'config_missing');
  const sent = [];
  const fakeFetch = async (url, init) => {
    sent.push({ url, init });
    if (url.endsWith('/attribution/identify')) return new Response('{"error":"click_not_found","detail":"no click with this cref"}', { status: 404 });
    return new Response(JSON.stringify({ ok: true, id: 'evt_1', eventId: 'evt_1', attribution: { status: 'no_identity', model: null, touches: [] } }), { status: 201 });
  };
  const op = new OpenPartnerServer({ apiUrl: 'https://partners.example.com/api/t/acme/', apiKey: 'op_key', fetch: fakeFetch });
  const r = await op.trackEvent({ userId: 'u1', type: 'invoice_paid', value: 249, currency: 'USD', metadata: { inv: 'i1' } });
  assert.equal(r.attribution.status, 'no_identity');
  assert.equal(sent[0].url, 'https://partners.example.com/api/t/acme/attribution/events');
  assert.equal(sent[0].init.method, 'POST');
  assert.equal(sent[0].init.headers.authorization, 'Bearer op_key');
  assert.ok(sent[0].init.headers['idempotency-key']);
  assert.deepEqual(JSON.parse(sent[0].init.body), { userId: 'u1', type: 'invoice_paid', value: 249, currency: 'USD', metadata: { inv: 'i1' } });
  const err = await op.identify({ cref: 'nope', userId: 'u1', ts: 1700000000000 }).catch((e) => e);
  assert.ok(err instanceof OpenPartnerError);
  assert.equal(err.status, 404);
  assert.equal(err.code, 'click_not_found');
  assert.equal(err.detail, 'no click with this cref');
  assert.deepEqual(JSON.parse(sent[1].init.body), { cref: 'nope', userId: 'u1', ts: 1700000000000 });
  await op.refund({ userId: 'u1', refundOf: 'inv_1' });
  assert.deepEqual(JSON.parse(sent[2].init.body), { userId: 'u1', type: 'refund', metadata: { refundOf: 'inv_1' } });
});

test('npm pack: the tarball installs and both entry points load from it', async () => {
  const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(`${tmpdir()}/openpartner-sdk-pack-`);
  try {
    // dist/ is already built (prepack would rebuild it under the other test files' feet).
    const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: root, encoding: 'utf8' });
    const [info] = JSON.parse(out);
    const files = info.files.map((f) => f.path);
    for (const f of ['package.json', 'README.md', 'LICENSE', 'dist/browser.js', 'dist/browser.cjs', 'dist/server.js', 'dist/server.cjs', 'dist/openpartner.global.js', 'dist/types/browser.d.ts', 'dist/types/browser.d.cts', 'dist/types/server/index.d.ts', 'dist/types/server/index.d.cts']) {
      assert.ok(files.includes(f), `${f} in the tarball`);
    }
    assert.ok(!files.some((f) => f.startsWith('src/') || f.startsWith('test/') || f.startsWith('node_modules/')), files.join(' '));
    await writeFile(`${dir}/package.json`, JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
    execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', `./${info.filename}`], { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
    await writeFile(`${dir}/esm.mjs`, "import { OpenPartner } from '@openpartner/sdk'; import { createClient, verifyWebhook } from '@openpartner/sdk/server'; console.log(typeof OpenPartner.init, typeof createClient, typeof verifyWebhook);");
    await writeFile(`${dir}/cjs.cjs`, "const { OpenPartner } = require('@openpartner/sdk'); const { OpenPartnerServer } = require('@openpartner/sdk/server'); console.log(typeof OpenPartner.init, typeof OpenPartnerServer);");
    assert.equal(execFileSync(process.execPath, ['esm.mjs'], { cwd: dir, encoding: 'utf8' }).trim(), 'function function function');
    assert.equal(execFileSync(process.execPath, ['cjs.cjs'], { cwd: dir, encoding: 'utf8' }).trim(), 'function function');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
