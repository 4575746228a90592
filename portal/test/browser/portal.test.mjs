// The portal in a real browser (portal.md, "Proven in a real browser"), against the real
// stack scripts/test-portal starts: Debian's Chromium driven by playwright-core through
// `executablePath`. One tenant per run, provisioned with the platform key.
//
// - the journey: an admin signs in through the dev mailbox link, creates a campaign (with a
//   compound rule) and invites a partner; the partner signs in, creates a link; a visit to
//   the link's /r/... URL shows on the partner's dashboard; an event attributes; the admin
//   approves the commission and runs a payout (preview, CSV, mark paid); the partner sees it
//   paid;
// - every page: a screenshot (OPENPARTNER_SCREENSHOTS), axe-core with 0 serious or critical
//   violations, time to usable under 1 s;
// - a keyboard-only flow (skip link, navigation, a form, a confirmation dialog);
// - the budget: the first load transfers under 250 KB of compressed JavaScript.
// The figures go to <screenshots>/budget.json.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

const dev = JSON.parse(readFileSync(process.env.OPENPARTNER_DEV_JSON, 'utf8'));
const gw = dev.gateway;
const executablePath = process.env.OPENPARTNER_CHROMIUM || '/usr/bin/chromium';
const shots = process.env.OPENPARTNER_SCREENSHOTS || join(process.cwd(), 'test-results');
mkdirSync(shots, { recursive: true });

const run = Date.now().toString(36);
const slug = `portal-${run}`;
const adminEmail = `admin-${run}@portal.test`;
const partnerEmail = `pat-${run}@portal.test`;
const portal = `${gw}/t/${slug}`;
const apiBase = `${gw}/api/t/${slug}`;
const USABLE_MS = 1000;
const JS_BUDGET = 250 * 1024;

let browser;
let adminKey;
const state = {};
const budget = { jsTransferBytes: null, pages: [] };
const cspErrors = [];

async function apiCall(method, path, body, key = adminKey) {
  const res = await fetch(`${apiBase}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** The newest link to the portal's sign-in page mailed to `to` (dev mailbox). */
async function mailedLink(to, after = 0) {
  for (let i = 0; i < 50; i++) {
    const r = await apiCall('GET', `/dev/mailbox?to=${encodeURIComponent(to)}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const mail = r.body.data[0];
    if (mail && r.body.data.length > after) {
      const m = /(https?:\/\/\S+\/login\?token=\S+)/.exec(mail.body);
      assert.ok(m, `a sign-in link in: ${mail.body}`);
      return { link: m[1], count: r.body.data.length };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no mail to ${to}`);
}

async function mailCount(to) {
  const r = await apiCall('GET', `/dev/mailbox?to=${encodeURIComponent(to)}`);
  return r.body.data.length;
}

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content.Security.Policy/i.test(m.text())) cspErrors.push(m.text());
  });
  page.on('pageerror', (e) => cspErrors.push(`page error: ${e.message}`));
  return page;
}

/** Waits until the page shows its heading and nothing is loading any more. */
async function usable(page) {
  await page.waitForFunction(
    () =>
      document.querySelector('main h1') &&
      ![...document.querySelectorAll('[role=status]')].some((e) => e.textContent.includes('Loading')),
    null,
    { timeout: 10_000 },
  );
}

/** Opens `path` of the portal (a full load, as a deep link), returns ms to usable. */
async function open(page, path) {
  const t0 = Date.now();
  await page.goto(`${portal}${path}`);
  await usable(page);
  return Date.now() - t0;
}

async function signIn(page, email) {
  const before = await mailCount(email);
  await open(page, '/');
  await page.getByLabel('Email address').fill(email);
  await page.getByRole('button', { name: 'Email me a sign-in link' }).click();
  await page.getByRole('heading', { name: 'Check your mail', exact: true }).waitFor();
  const { link } = await mailedLink(email, before);
  assert.ok(link.startsWith(`${portal}/login?token=`), `the link points at the portal on this origin: ${link}`);
  await page.goto(link);
  await usable(page);
}

describe('the portal in Chromium', () => {
  before(async () => {
    const res = await fetch(`${gw}/platform/tenants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${dev.platformKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ slug, name: 'Portal test', adminEmail }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    adminKey = (await res.json()).adminKey;
    browser = await chromium.launch({
      executablePath,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  after(async () => {
    await browser?.close();
    writeFileSync(join(shots, 'budget.json'), JSON.stringify(budget, null, 2) + '\n');
    console.log(`portal budget: ${JSON.stringify(budget)}`);
  });

  test('the shell: strict CSP, no-cache; hashed assets immutable; deep links reload', async () => {
    const shell = await fetch(`${portal}/commissions?status=paid`);
    assert.equal(shell.status, 200);
    const csp = shell.headers.get('content-security-policy');
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(shell.headers.get('cache-control'), 'no-cache');
    const html = await shell.text();
    assert.match(html, new RegExp(`<base href="/t/${slug}/">`));
    const script = /src="\.\/(assets\/[^"]+\.js)"/.exec(html)[1];
    const js = await fetch(`${portal}/${script}`);
    assert.equal(js.status, 200);
    assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  });

  test('the journey: admin and partner, from sign-in to a paid commission', async () => {
    // The admin signs in through the dev mailbox link; the first load is measured.
    const admin = await newPage();
    const scripts = [];
    admin.on('response', (r) => {
      if (r.request().resourceType() === 'script') scripts.push(r);
    });
    await open(admin, '/');
    await admin.getByRole('heading', { name: 'Sign in', exact: true }).waitFor();
    let bytes = 0;
    for (const r of scripts) bytes += (await r.request().sizes()).responseBodySize;
    budget.jsTransferBytes = bytes;
    assert.ok(bytes > 0 && bytes < JS_BUDGET, `first load transfers ${bytes} bytes of JavaScript (budget ${JS_BUDGET})`);
    await admin.screenshot({ path: join(shots, 'signin.png'), fullPage: true });
    const mailsBefore = await mailCount(adminEmail);
    await admin.getByLabel('Email address').fill(adminEmail);
    await admin.getByRole('button', { name: 'Email me a sign-in link' }).click();
    await admin.getByRole('heading', { name: 'Check your mail', exact: true }).waitFor();
    await admin.screenshot({ path: join(shots, 'signin-check-mail.png'), fullPage: true });
    const { link } = await mailedLink(adminEmail, mailsBefore);
    assert.ok(link.startsWith(`${portal}/login?token=`), link);
    await admin.goto(link);
    await admin.getByRole('heading', { name: 'Overview', exact: true }).waitFor();
    state.admin = admin;

    // A campaign with a compound rule: 10 % of every event, plus 5.00 USD on the first signup.
    await admin.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Campaigns' }).click();
    await admin.getByRole('heading', { name: 'Campaigns', exact: true }).waitFor();
    await admin.getByRole('link', { name: 'New campaign' }).click();
    await admin.getByRole('heading', { name: 'New campaign', exact: true }).waitFor();
    await admin.getByLabel('Name', { exact: true }).fill('Spring launch');
    await admin.getByLabel('Destination URL').fill('https://shop.example/welcome');
    const first = admin.locator('fieldset.subrule').nth(0);
    await first.getByLabel('Percent').fill('10');
    await admin.getByRole('button', { name: 'Add a sub-rule' }).click();
    const second = admin.locator('fieldset.subrule').nth(1);
    await second.getByLabel('Pays on').selectOption('first');
    await second.getByLabel('Event type').fill('signup');
    await second.getByLabel('Kind').selectOption('fixed');
    await second.getByLabel('Amount').fill('5.00');
    await admin.getByRole('button', { name: 'Create campaign' }).click();
    await admin.getByRole('heading', { name: 'Spring launch', exact: true }).waitFor();
    state.campaignId = admin.url().split('/').pop();
    const campaign = await apiCall('GET', `/campaigns/${state.campaignId}`);
    assert.equal(campaign.status, 200);
    assert.equal(campaign.body.commissionRule.length, 2, JSON.stringify(campaign.body.commissionRule));
    assert.equal(campaign.body.commissionRule[1].trigger, 'first');

    // The admin invites a partner.
    await admin.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Partners' }).click();
    await admin.getByRole('heading', { name: 'Partners', exact: true }).waitFor();
    await admin.getByLabel('Name', { exact: true }).fill('Pat Partner');
    await admin.getByLabel('Email', { exact: true }).fill(partnerEmail);
    await admin.getByRole('button', { name: 'Send invitation' }).click();
    await admin.getByText(`Invitation sent to ${partnerEmail}`).waitFor();
    await admin.getByRole('link', { name: 'Pat Partner' }).click();
    await admin.getByRole('heading', { name: 'Pat Partner', exact: true }).waitFor();
    // The open campaign reaches the new partner.
    await admin.locator('tr', { hasText: 'Spring launch' }).getByText('granted (admin)').waitFor();

    // The partner signs in with the invitation and creates a link.
    const partner = await newPage();
    state.partner = partner;
    const invite = await mailedLink(partnerEmail);
    assert.ok(invite.link.startsWith(`${portal}/login?token=`), invite.link);
    await partner.goto(invite.link);
    await partner.getByRole('heading', { name: 'Dashboard', exact: true }).waitFor();
    const me = await partner.evaluate(async (api) => (await (await fetch(`${api}/auth/me`)).json()), `/api/t/${slug}`);
    assert.equal(me.role, 'partner');
    state.partnerId = me.partnerId;
    const probe = await apiCall('GET', `/partners/${state.partnerId}/dashboard`);
    assert.equal(probe.status, 200, 'the reporting routes (reporting.md) are on this server');

    await partner.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Links' }).click();
    await partner.getByRole('heading', { name: 'Links', exact: true }).waitFor();
    await partner.getByLabel('Campaign').selectOption({ label: 'Spring launch' });
    await partner.getByLabel('Link name').fill(`pat-${run}`);
    await partner.getByRole('button', { name: 'Create link' }).click();
    const url = `${gw}/r/${slug}/pat-${run}`;
    await partner.getByText(url, { exact: true }).waitFor();
    // The API's refusals show with their detail.
    await partner.getByLabel('Link name').fill(`pat-${run}`);
    await partner.getByRole('button', { name: 'Create link' }).click();
    await partner.getByRole('alert').getByText('(linkKey_taken)').waitFor();
    await partner.getByRole('button', { name: 'QR code' }).click();
    await partner.getByRole('img', { name: `QR code for ${url}` }).waitFor();

    // A visit to the link.
    const visit = await fetch(url, { redirect: 'manual' });
    assert.equal(visit.status, 302);
    const location = new URL(visit.headers.get('location'));
    assert.equal(location.origin + location.pathname, 'https://shop.example/welcome');
    const cref = location.searchParams.get('cref');
    assert.ok(cref);

    await open(partner, '/');
    await partner.getByTestId('figure-clicks').getByText('1', { exact: true }).waitFor();

    // The merchant's app identifies the visitor and reports a purchase: it attributes.
    assert.equal((await apiCall('POST', '/attribution/identify', { cref, userId: `u-${run}` })).status, 200);
    const ev = await apiCall('POST', '/attribution/events', { userId: `u-${run}`, type: 'purchase', value: '100.00', currency: 'USD', eventId: `inv-${run}` });
    assert.equal(ev.status, 201, JSON.stringify(ev.body));
    assert.equal(ev.body.attribution.status, 'attributed');
    await open(partner, '/');
    await partner.getByTestId('figure-conversions').getByText('1', { exact: true }).waitFor();
    await partner.getByTestId('figure-earnings').getByText('10.00 USD').waitFor();

    // The admin approves the commission (after confirming) ...
    await admin.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Commissions' }).click();
    await admin.getByRole('heading', { name: 'Commissions', exact: true }).waitFor();
    const row = admin.locator('tr[data-status=accrued]', { hasText: '10.00 USD' });
    await row.getByRole('checkbox').check();
    await admin.getByRole('button', { name: 'Approve selected (1)' }).click();
    const confirm = admin.getByRole('dialog');
    await confirm.getByRole('heading', { name: 'Approve 1 commission?', exact: true }).waitFor();
    await confirm.getByRole('button', { name: 'Approve', exact: true }).click();
    await admin.getByText('1 approved.').waitFor();

    // ... and runs a payout: the preview, the run, the CSV, marking it paid.
    await admin.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Payouts' }).click();
    await admin.getByRole('heading', { name: 'Payouts', exact: true }).waitFor();
    await admin.locator('table', { hasText: 'Preview' }).getByText('10.00 USD').waitFor();
    await admin.getByRole('button', { name: 'Run payouts' }).click();
    await admin.getByRole('dialog').getByRole('button', { name: 'Run payouts' }).click();
    await admin.getByText('Payout run done: 1 payout created.').waitFor();
    await admin.locator('tr[data-status=pending]', { hasText: '10.00 USD' }).waitFor();
    const [download] = await Promise.all([admin.waitForEvent('download'), admin.getByRole('button', { name: 'Download CSV' }).click()]);
    const csv = readFileSync(await download.path(), 'utf8');
    assert.match(csv, /"10\.00","USD","pending"/, csv);
    await admin.getByRole('button', { name: 'Mark paid' }).click();
    await admin.getByRole('dialog').getByRole('button', { name: 'Mark paid' }).click();
    await admin.getByText('Payout marked paid.').waitFor();
    await admin.locator('tr[data-status=paid]', { hasText: '10.00 USD' }).waitFor();

    // The partner sees it paid.
    await open(partner, '/commissions');
    await partner.locator('tr[data-status=paid]', { hasText: '10.00 USD' }).waitFor();
    await open(partner, '/payouts');
    await partner.locator('tr', { hasText: '10.00 USD' }).getByText('paid', { exact: true }).waitFor();
    // The admin's overview counts it too.
    await open(admin, '/');
    await admin.getByTestId('figure-clicks').getByText('1', { exact: true }).waitFor();
    await admin.locator('tr', { hasText: 'Pat Partner' }).getByText('10.00 USD').first().waitFor();
  });

  test("terms: the admin sets a partner's terms with the rule editor, then ends them", async () => {
    const admin = state.admin;
    assert.ok(admin, 'the journey ran first');
    await open(admin, `/partners/${state.partnerId}`);
    await admin.getByRole('button', { name: 'Set terms' }).click();
    await admin.locator('fieldset.subrule').first().getByLabel('Percent').fill('15');
    await admin.getByRole('button', { name: 'Save terms' }).click();
    await admin.getByText('Terms saved.').waitFor();
    await admin.getByText('15% on every one of the events').waitFor();
    const terms = await apiCall('GET', `/partners/${state.partnerId}/commission-snapshot`);
    assert.equal(terms.body.terms[0].commissionValue, '15', JSON.stringify(terms.body));
    await admin.getByRole('button', { name: 'End terms' }).click();
    await admin.getByRole('dialog').getByRole('button', { name: 'End terms' }).click();
    await admin.getByText('Terms ended.').waitFor();
    await admin.getByText("No terms: the campaigns' own rules apply.").waitFor();
  });

  test('webhooks and keys: secrets shown once, test fire, retry, rotation, revocation', async () => {
    const admin = state.admin;
    assert.ok(admin, 'the journey ran first');
    // An endpoint nobody listens on: its deliveries fail, and can be retried.
    await open(admin, '/webhooks');
    await admin.getByLabel('URL', { exact: true }).fill('http://127.0.0.1:9/portal-hook');
    await admin.getByLabel('Label (optional)').fill('Nobody home');
    await admin.getByLabel('payout.created').check();
    await admin.getByRole('button', { name: 'Add endpoint' }).click();
    const secret = await admin.getByTestId('secret').textContent();
    assert.match(secret, /^whsec_/);
    await admin.getByRole('button', { name: 'I have stored it' }).click();
    assert.equal(await admin.getByTestId('secret').count(), 0, 'the secret is gone once stored');
    await admin.getByRole('link', { name: 'Nobody home' }).click();
    await admin.getByRole('heading', { name: 'Nobody home', exact: true }).waitFor();
    await admin.getByRole('button', { name: 'Send a test event' }).click();
    await admin.getByText('Test event sent.').waitFor();
    await admin.locator('tr', { hasText: 'webhook.test' }).waitFor();
    await admin.getByRole('button', { name: 'Retry' }).first().click();
    await admin.getByText('Delivery retried.').waitFor();
    await admin.getByRole('button', { name: 'Rotate secret' }).click();
    await admin.getByRole('dialog').getByRole('button', { name: 'Rotate secret' }).click();
    assert.match(await admin.getByTestId('secret').textContent(), /^whsec_/);
    assert.notEqual(await admin.getByTestId('secret').textContent(), secret);
    await admin.getByRole('button', { name: 'Deactivate' }).click();
    await admin.getByRole('dialog').getByRole('button', { name: 'Deactivate' }).click();
    await admin.getByText('Endpoint deactivated.').waitFor();
    await admin.locator('dl.details').getByText('no', { exact: true }).waitFor();

    // The partner's own key: shown once, listed by its prefix, revoked after confirming.
    const partner = state.partner;
    await open(partner, '/api-keys');
    await partner.getByLabel('Label (optional)').fill('my script');
    await partner.getByRole('button', { name: 'Create key' }).click();
    const key = await partner.getByTestId('secret').textContent();
    assert.match(key, /^op_[0-9a-f]{48}$/);
    const intro = await fetch(`${apiBase}/auth/introspect`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal((await intro.json()).partnerId, state.partnerId, 'the key acts as the partner');
    await partner.getByRole('button', { name: 'I have stored it' }).click();
    const row = partner.locator('tr', { hasText: 'my script' });
    await row.getByText(`op_${key.slice(3, 11)}…`, { exact: true }).waitFor();
    await row.getByRole('button', { name: 'Revoke' }).click();
    await partner.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
    await row.getByRole('button', { name: 'Revoke' }).waitFor({ state: 'detached' });
    const after = await fetch(`${apiBase}/auth/introspect`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(after.status, 401, 'a revoked key stops working at once');
  });

  test('every page: a screenshot, no serious or critical axe violation, usable within 1 s', async () => {
    assert.ok(state.admin && state.partner, 'the journey ran first');
    // Things for the detail pages to show.
    const hook = await apiCall('POST', '/webhooks', { url: 'http://127.0.0.1:9/hook', events: ['*'], label: 'Test receiver' });
    assert.equal(hook.status, 201, JSON.stringify(hook.body));
    const pages = [
      ['admin', 'overview', '/'],
      ['admin', 'partners', '/partners'],
      ['admin', 'partner', `/partners/${state.partnerId}`],
      ['admin', 'campaigns', '/campaigns'],
      ['admin', 'campaign-new', '/campaigns/new'],
      ['admin', 'campaign', `/campaigns/${state.campaignId}`],
      ['admin', 'commissions', '/commissions'],
      ['admin', 'payouts', '/payouts'],
      ['admin', 'webhooks', '/webhooks'],
      ['admin', 'webhook', `/webhooks/${hook.body.endpoint.id}`],
      ['admin', 'admins', '/admins'],
      ['admin', 'settings', '/settings'],
      ['partner', 'dashboard', '/'],
      ['partner', 'links', '/links'],
      ['partner', 'commissions', '/commissions'],
      ['partner', 'payouts', '/payouts'],
      ['partner', 'profile', '/profile'],
      ['partner', 'api-keys', '/api-keys'],
      ['partner', 'not-found', '/no/such/page'],
    ];
    const failures = [];
    for (const [who, name, path] of pages) {
      const page = state[who];
      const ms = await open(page, path);
      // A second load (assets cached), as people move between pages.
      const warm = await open(page, path);
      await page.screenshot({ path: join(shots, `${who}-${name}.png`), fullPage: true });
      const axe = await new AxeBuilder({ page }).analyze();
      const bad = axe.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      for (const v of bad) failures.push(`${who} ${path}: ${v.id} (${v.impact}) ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join('; ')}`);
      budget.pages.push({ page: `${who} ${path}`, firstLoadMs: ms, warmLoadMs: warm, axeSerious: bad.length });
      if (Math.max(ms, warm) > USABLE_MS) failures.push(`${who} ${path}: usable after ${ms} ms / ${warm} ms (budget ${USABLE_MS} ms)`);
    }
    // The signed-out page too.
    const out = await newPage();
    const ms = await open(out, '/');
    const axe = await new AxeBuilder({ page: out }).analyze();
    const bad = axe.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    for (const v of bad) failures.push(`signin: ${v.id} ${v.help}`);
    budget.pages.push({ page: 'signed out /', firstLoadMs: ms, warmLoadMs: ms, axeSerious: bad.length });
    await out.context().close();
    assert.deepEqual(failures, []);
    assert.deepEqual(cspErrors, [], 'no Content-Security-Policy violation, no page error');
  });

  test('keyboard only: skip link, navigation, a form, a confirmation dialog', async () => {
    const page = await newPage();
    await signIn(page, adminEmail);
    await page.getByRole('heading', { name: 'Overview', exact: true }).waitFor();
    const focused = () => page.evaluate(() => {
      const e = document.activeElement;
      return { tag: e?.tagName, text: (e?.textContent || '').trim(), name: e?.getAttribute('name'), label: e?.getAttribute('aria-label') };
    });
    /** Presses Tab until the focused element matches, at most 60 times. */
    const tabTo = async (matches, what) => {
      for (let i = 0; i < 60; i++) {
        await page.keyboard.press('Tab');
        if (matches(await focused())) return;
      }
      throw new Error(`Tab never reached ${what}`);
    };
    // The skip link comes first and moves focus to the content.
    // From the top of the page, as after a fresh load with nothing focused.
    await page.evaluate(() => {
      document.body.tabIndex = -1;
      document.body.focus();
      document.body.removeAttribute('tabindex');
    });
    await page.keyboard.press('Tab');
    assert.equal((await focused()).text, 'Skip to content');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');

    // To Partners through the navigation, invite someone with the form.
    await tabTo((f) => f.tag === 'A' && f.text === 'Partners', 'the Partners link');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Partners', exact: true }).waitFor();
    assert.equal((await focused()).tag, 'H1', 'a new page puts focus on its heading');
    const email = `kb-${run}@portal.test`;
    await tabTo((f) => f.name === 'name', 'the name field');
    await page.keyboard.type('Kim Keyboard');
    await page.keyboard.press('Tab');
    assert.equal((await focused()).name, 'email');
    await page.keyboard.type(email);
    await page.keyboard.press('Enter');
    await page.getByText(`Invitation sent to ${email}`).waitFor();

    // Open the partner, back out of a confirmation with Escape, then confirm with Enter.
    await tabTo((f) => f.tag === 'A' && f.text === 'Kim Keyboard', 'the new partner');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Kim Keyboard', exact: true }).waitFor();
    await tabTo((f) => f.tag === 'BUTTON' && f.text === 'Revoke partner', 'Revoke partner');
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').waitFor();
    assert.equal((await focused()).name, 'reason', 'the dialog takes the focus');
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'hidden' });
    assert.equal(await page.locator('dl.details .status').textContent(), 'invited', 'Escape changes nothing');
    await page.keyboard.press('Enter'); // focus went back to the button
    await page.getByRole('dialog').waitFor();
    await page.keyboard.type('Testing the keyboard');
    await page.keyboard.press('Enter');
    await page.getByText('Partner revoked.').waitFor();
    await page.locator('dl.details .status', { hasText: 'revoked' }).waitFor();
    await page.screenshot({ path: join(shots, 'keyboard-revoked.png'), fullPage: true });

    // Sign out, by keyboard too.
    await tabTo((f) => f.tag === 'BUTTON' && f.text === 'Sign out', 'Sign out');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Sign in', exact: true }).waitFor();
    await page.context().close();
  });
});
