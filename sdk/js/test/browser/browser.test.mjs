// The browser part in real Chromium (Playwright), on pages this test serves from its own
// port (so the identify call to the stack is a real cross-origin CORS request): the ES
// module build and the <script> build, landing with a real click id, cookie and
// localStorage capture, the router's own _cref cookie, identify against the stack, and a
// later conversion attributed to that click.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createClient, collect } from '@openpartner/sdk/server';
import { baseUrl, apiKey, skip as noStack, run, click } from '../live/env.mjs';

const executablePath = process.env.OPENPARTNER_CHROMIUM || '/usr/bin/chromium';
const skip = noStack || (!existsSync(executablePath) && `no Chromium at ${executablePath}`);
const dist = fileURLToPath(new URL('../../dist/', import.meta.url));

/** The merchant's site: pages that load the SDK one way or the other, and dist/ under /sdk/. */
function site() {
  const pages = {
    // The ES module build.
    '/esm': (apiUrl) => `<!doctype html><html><head><title>esm</title></head><body>
<script type="module">
  import { OpenPartner, OpenPartnerError } from '/sdk/browser.js';
  window.errors = [];
  window.op = OpenPartner.init({ apiUrl: ${JSON.stringify(apiUrl)}, onError: (e) => window.errors.push({ name: e && e.name, code: e && e.code, status: e && e.status, isOpError: e instanceof OpenPartnerError }) });
  window.ready = true;
</script></body></html>`,
    // The <script> tag build.
    '/global': (apiUrl) => `<!doctype html><html><head><title>global</title>
<script src="/sdk/openpartner.global.js"></script></head><body>
<script>
  window.errors = [];
  window.op = OpenPartner.init({ apiUrl: ${JSON.stringify(apiUrl)}, onError: function (e) { window.errors.push({ name: e && e.name, code: e && e.code, status: e && e.status }); } });
  window.ready = true;
</script></body></html>`,
    // A page without the SDK (a campaign destination for the cookie-only case).
    '/plain': () => '<!doctype html><html><body>no sdk here</body></html>',
  };
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    try {
      if (url.pathname.startsWith('/sdk/')) {
        const file = url.pathname.slice(5).replace(/[^A-Za-z0-9._-]/g, '');
        const body = await readFile(dist + file);
        res.writeHead(200, { 'content-type': file.endsWith('.map') ? 'application/json' : 'text/javascript' });
        return res.end(body);
      }
      const page = pages[url.pathname];
      if (!page) return res.writeHead(404).end('not found');
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page(baseUrl));
    } catch (e) {
      res.writeHead(500).end(String(e));
    }
  });
  return {
    async start() {
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      return server.address().port;
    },
    stop: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}

describe('browser SDK in Chromium', { skip }, () => {
  const op = skip ? null : createClient({ baseUrl, apiKey });
  const web = site();
  let browser, port, origin, partner;

  /** A campaign whose destination is one of our pages, and a link to it; answers the link key. */
  async function linkTo(path, tag) {
    const campaign = await op.campaigns.create({
      name: `browser ${tag} ${run}`,
      destinationUrl: `${origin}${path}`,
      commissionRule: { type: 'fixed', value: '5.00', currency: 'USD' },
    });
    const link = await op.links.create(partner.id, { linkKey: `br-${tag}-${run}`, campaignId: campaign.id });
    return link.linkKey;
  }
  async function openPage(context, url) {
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    await page.goto(url);
    await page.waitForFunction(() => window.ready === true);
    assert.deepEqual(problems, []);
    return page;
  }
  const cookies = async (context) => Object.fromEntries((await context.cookies(origin)).map((c) => [c.name, c]));
  /** A later conversion for the user: attributed to exactly that click when identify was recorded. */
  async function assertAttributed(userId, cref) {
    const ev = await op.trackEvent({ userId, type: 'invoice_paid', value: '10.00', eventId: `br-${userId}` });
    assert.equal(ev.attribution.status, 'attributed', JSON.stringify(ev));
    assert.deepEqual(ev.attribution.touches.map((t) => t.clickId), [cref]);
    assert.equal(ev.attribution.touches[0].partnerId, partner.id);
  }

  before(async () => {
    port = await web.start();
    origin = `http://127.0.0.1:${port}`;
    assert.notEqual(new URL(baseUrl).port, String(port), 'the page is on another origin than the API');
    partner = await op.partners.create({ email: `browser-${run}@example.com`, name: 'Browser', sendInvite: false });
    browser = await chromium.launch({
      executablePath,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => {
    await browser?.close();
    await web.stop();
  });

  test('ES module build: lands with ?cref=<click id>, captures it, identify is recorded by the stack', async () => {
    const linkKey = await linkTo('/esm', 'esm');
    const { cref, location } = await click(op.routerUrl(linkKey));
    assert.equal(location, `${origin}/esm?cref=${cref}`);
    const context = await browser.newContext();
    const page = await openPage(context, location);
    assert.equal(await page.evaluate(() => window.op.getCref()), cref);
    assert.equal(await page.evaluate(() => window.op.getReferral()), cref);
    assert.equal(await page.evaluate(() => localStorage.getItem('openpartner:cref')), cref);
    const c = (await cookies(context))._cref;
    assert.equal(c.value, cref);
    assert.equal(c.path, '/');
    assert.equal(c.sameSite, 'Lax');
    assert.ok(c.expires * 1000 > Date.now() + 89 * 86400_000, 'a 90-day cookie');

    // Another page of the site, without the query: still held.
    const next = await openPage(context, `${origin}/esm?page=2`);
    assert.equal(await next.evaluate(() => window.op.getCref()), cref);

    // identify: a cross-origin POST from the page to the stack.
    const requests = [];
    next.on('request', (r) => r.url().endsWith('/attribution/identify') && requests.push(r));
    const userId = `esm-${run}`;
    const result = await next.evaluate((u) => window.op.identify(u), userId);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.firstStitch, true);
    assert.ok(result.identityId);
    assert.deepEqual(await next.evaluate(() => window.errors), []);
    // (Chromium runs the CORS preflight itself; Playwright shows only the POST.)
    assert.deepEqual(requests.map((r) => r.method()), ['POST']);
    const sent = requests[0];
    const headers = await sent.allHeaders();
    assert.equal(headers.origin, origin);
    assert.equal(headers.cookie, undefined, 'no credentials sent');
    const response = await sent.response();
    assert.equal(response.status(), 200);
    assert.equal((await response.allHeaders())['access-control-allow-origin'], origin);
    const payload = JSON.parse(sent.postData());
    assert.equal(payload.cref, cref);
    assert.equal(payload.userId, userId);
    assert.ok(Math.abs(payload.ts - Date.now()) < 60_000, 'ts in epoch milliseconds');
    await assertAttributed(userId, cref);
    await context.close();
  });

  test('ES module build: localStorage restores an expired cookie; clear() forgets both', async () => {
    const { cref } = await click(op.routerUrl(await linkTo('/esm', 'itp')));
    const context = await browser.newContext();
    await openPage(context, `${origin}/esm?cref=${cref}`);
    await context.clearCookies(); // as Safari's ITP would after 7 days
    const page = await openPage(context, `${origin}/esm`);
    assert.equal(await page.evaluate(() => window.op.getCref()), cref);
    assert.equal((await cookies(context))._cref?.value, cref, 'cookie written again');
    // A fresh click wins over the stored one.
    const { cref: newer } = await click(op.routerUrl(await linkTo('/esm', 'newer')));
    const landed = await openPage(context, `${origin}/esm?cref=${newer}`);
    assert.equal(await landed.evaluate(() => window.op.getCref()), newer);
    assert.equal(await landed.evaluate(() => localStorage.getItem('openpartner:cref')), newer);
    await landed.evaluate(() => window.op.clear());
    assert.equal(await landed.evaluate(() => window.op.getCref()), null);
    assert.equal(await landed.evaluate(() => localStorage.getItem('openpartner:cref')), null);
    assert.equal((await cookies(context))._cref, undefined);
    assert.equal(await landed.evaluate(() => window.op.identify('nobody')), null, 'nothing to identify');
    await context.close();
  });

  test('<script> build: the whole click in the browser — router redirect, capture, identify', async () => {
    const linkKey = await linkTo('/global', 'global');
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(op.routerUrl(linkKey)); // the router answers 302 to our page with ?cref=
    await page.waitForFunction(() => window.ready === true);
    const landed = new URL(page.url());
    assert.equal(landed.origin + landed.pathname, `${origin}/global`);
    const cref = landed.searchParams.get('cref');
    assert.match(cref, /^[0-9A-Z]{26}$/);
    assert.equal(await page.evaluate(() => typeof window.OpenPartner.init), 'function');
    assert.equal(await page.evaluate(() => window.OpenPartner.OpenPartnerError.name), 'OpenPartnerError');
    assert.equal(await page.evaluate(() => window.op.getCref()), cref);
    assert.equal(await page.evaluate(() => localStorage.getItem('openpartner:cref')), cref);
    assert.equal((await cookies(context))._cref.value, cref);
    const userId = `global-${run}`;
    const result = await page.evaluate((u) => window.op.identify(u), userId);
    assert.equal(result?.ok, true, JSON.stringify(await page.evaluate(() => window.errors)));
    await assertAttributed(userId, cref);
    await context.close();
  });

  test("the router's own _cref cookie is honoured when there is no cref on the URL", async () => {
    // The campaign sends visitors to a page without the SDK; the router's cookie (same
    // host, so the same site) is what the SDK finds later on a page that has it.
    const linkKey = await linkTo('/plain', 'cookie');
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(op.routerUrl(linkKey));
    assert.ok(page.url().startsWith(`${origin}/plain?cref=`));
    const cref = new URL(page.url()).searchParams.get('cref');
    assert.equal((await cookies(context))._cref.value, cref, 'set by the router');
    const sdkPage = await openPage(context, `${origin}/global`);
    assert.equal(await sdkPage.evaluate(() => window.op.getCref()), cref);
    assert.equal(await sdkPage.evaluate(() => localStorage.getItem('openpartner:cref')), cref);
    const userId = `cookie-${run}`;
    assert.equal((await sdkPage.evaluate((u) => window.op.identify(u), userId))?.ok, true);
    await assertAttributed(userId, cref);
    await context.close();
  });

  test('CORS is real: a page on an origin that is not the tenant’s cannot identify', async () => {
    const { cref } = await click(op.routerUrl(await linkTo('/esm', 'cors')));
    const context = await browser.newContext();
    // Same page, another origin (localhost is not any campaign's destination origin).
    const page = await openPage(context, `http://localhost:${port}/esm?cref=${cref}`);
    assert.equal(await page.evaluate(() => window.op.getCref()), cref);
    const userId = `cors-${run}`;
    assert.equal(await page.evaluate((u) => window.op.identify(u), userId), null);
    const errors = await page.evaluate(() => window.errors);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, 'network_error');
    assert.equal(errors[0].isOpError, true);
    const ev = await op.trackEvent({ userId, type: 'signup' });
    assert.equal(ev.attribution.status, 'no_identity', 'nothing was recorded');
    // An unknown click from an allowed origin: the API's 404 reaches onError (CORS headers on errors too).
    const ok = await openPage(context, `${origin}/esm?cref=01ZZZZZZZZZZZZZZZZZZZZZZZZ`);
    assert.equal(await ok.evaluate(() => window.op.identify('someone')), null);
    assert.deepEqual(await ok.evaluate(() => window.errors), [{ name: 'OpenPartnerError', code: 'click_not_found', status: 404, isOpError: true }]);
    await context.close();
  });

  test('every identity made from the browser is visible to the server client', async () => {
    const mine = await collect(op.commissions.iterateForPartner(partner.id));
    assert.equal(mine.length, 3, 'esm, global and cookie conversions each paid one fixed commission');
    assert.ok(mine.every((c) => c.amount === '5.00' && c.currency === 'USD'));
  });
});
