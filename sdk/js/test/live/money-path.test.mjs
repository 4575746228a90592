// The whole money path through the SDK, against the real local stack: partner, campaign,
// link, a click on the router, identify, a conversion, cursor iteration, approval, a payout
// run, mark paid, a refund (clawback), Idempotency-Key replays, error mapping, and webhooks
// delivered to a receiver on 127.0.0.1 and checked with verifyWebhook.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import {
  createClient,
  OpenPartnerServer,
  OpenPartnerError,
  verifyWebhook,
  verifyWebhookAsync,
  WebhookVerificationError,
  collect,
} from '@openpartner/sdk/server';
import { baseUrl, apiKey, skip, run, click } from './env.mjs';

const isError = (status, code, field) => (e) => {
  assert.ok(e instanceof OpenPartnerError, `expected OpenPartnerError, got ${e}`);
  assert.equal(e.status, status, e.message);
  assert.equal(e.code, code, e.message);
  if (field !== undefined) assert.equal(e.field, field);
  return true;
};

/** A webhook receiver on 127.0.0.1 that keeps each delivery's raw body and headers. */
function receiver() {
  const deliveries = [];
  const waiters = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const d = { headers: req.headers, raw: Buffer.concat(chunks) };
      d.body = JSON.parse(d.raw.toString('utf8'));
      deliveries.push(d);
      res.writeHead(200).end('ok');
      for (const w of waiters.splice(0)) w();
    });
  });
  return {
    deliveries,
    async start() {
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      return `http://127.0.0.1:${server.address().port}/hooks/openpartner`;
    },
    stop: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
    /** Waits (up to 15 s) for a delivery matching `pred`. */
    async waitFor(pred, what) {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const found = deliveries.find(pred);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no webhook delivery: ${what} (got ${deliveries.map((d) => d.body.event).join(', ')})`);
        await new Promise((r) => { waiters.push(r); setTimeout(r, 250); });
      }
    },
  };
}

describe('money path against the real stack', { skip }, () => {
  const op = skip ? null : createClient({ baseUrl, apiKey });
  const hooks = receiver();
  let endpoint, secret;
  let partner, campaign, link, cref, userId, event, commissionId, payout;

  before(async () => {
    // The webhook endpoint first, so the money path's own events are delivered to it.
    const url = await hooks.start();
    const created = await op.webhooks.create({ url, events: ['*'], label: `sdk-test ${run}` });
    endpoint = created.endpoint;
    secret = created.secret;
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{32}$/);
  });
  after(async () => {
    if (endpoint) await op.webhooks.delete(endpoint.id, { hard: true }).catch(() => {});
    await hooks.stop();
  });

  test('the key is an admin key', async () => {
    const me = await op.auth.introspect();
    assert.equal(me.role, 'admin');
  });

  test('create a partner, a campaign and a link', async () => {
    partner = await op.partners.create({ email: `ann-${run}@example.com`, name: `Ann ${run}`, sendInvite: false });
    assert.equal(partner.status, 'active');
    assert.equal(partner.invited, false);
    assert.equal(partner.email, `ann-${run}@example.com`);
    campaign = await op.campaigns.create({
      name: `Campaign ${run}`,
      destinationUrl: 'https://shop.example.com/landing',
      commissionRule: { type: 'percent', value: '20' },
    });
    assert.equal(campaign.attributionModel, 'last_click');
    assert.deepEqual(campaign.commissionRule, { type: 'percent', value: '20', recurring: true });
    link = await op.links.create(partner.id, { linkKey: `ann-${run}`, campaignId: campaign.id });
    assert.equal(link.partnerId, partner.id);
    assert.equal(link.campaignId, campaign.id);
    const got = await op.partners.get(partner.id);
    assert.equal(got.id, partner.id);
    const links = await collect(op.links.iterate(partner.id));
    assert.deepEqual(links.map((l) => l.linkKey), [`ann-${run}`]);
  });

  test('a click on the router: 302 with cref in Location and the _cref cookie', async () => {
    const c = await click(op.routerUrl(link.linkKey));
    cref = c.cref;
    assert.match(cref, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.ok(c.location.startsWith('https://shop.example.com/landing?'), c.location);
    assert.match(c.setCookie, new RegExp(`^_cref=${cref}; Path=/; Max-Age=7776000; SameSite=Lax`));
  });

  test('identify ties the click to a user; a repeat returns the same identity', async () => {
    userId = `user-${run}`;
    const first = await op.identify({ cref, userId, ts: Date.now() });
    assert.equal(first.ok, true);
    assert.equal(first.firstStitch, true);
    assert.ok(first.identityId);
    const again = await op.attribution.identify({ cref, userId });
    assert.equal(again.identityId, first.identityId);
    assert.equal(again.firstStitch, false);
  });

  test('trackEvent is attributed with a commission; the same eventId creates nothing new', async () => {
    event = await op.trackEvent({ userId, type: 'invoice_paid', value: '100.00', currency: 'USD', eventId: `inv-${run}` });
    assert.equal(event.ok, true);
    assert.equal(event.eventId, `inv-${run}`);
    assert.equal(event.attribution.status, 'attributed');
    assert.equal(event.attribution.model, 'last_click');
    assert.equal(event.attribution.touches.length, 1);
    const touch = event.attribution.touches[0];
    assert.equal(touch.clickId, cref);
    assert.equal(touch.partnerId, partner.id);
    assert.equal(touch.weight, 1);
    assert.ok(touch.commissionId);
    commissionId = touch.commissionId;
    const again = await op.trackEvent({ userId, type: 'invoice_paid', value: '100.00', currency: 'USD', eventId: `inv-${run}` });
    assert.equal(again.id, event.id);
    assert.equal(again.attribution.touches[0].commissionId, commissionId);
    const nobody = await op.trackEvent({ userId: `nobody-${run}`, type: 'signup' });
    assert.equal(nobody.attribution.status, 'no_identity');
  });

  test('the original SDK class works against the stack too', async () => {
    const legacy = new OpenPartnerServer({ apiUrl: baseUrl, apiKey });
    const r = await legacy.trackEvent({ userId, type: 'signup', eventId: `signup-${run}` });
    assert.equal(r.ok, true);
    assert.equal(r.eventId, `signup-${run}`);
    const id = await legacy.identify({ cref, userId, ts: Date.now() });
    assert.equal(id.ok, true);
  });

  test('the commission is listed, also through the cursor iterator over small pages', async () => {
    const c = await op.commissions.get(commissionId);
    assert.equal(c.commission.status, 'accrued');
    assert.equal(c.commission.amount, '20.00');
    assert.equal(c.commission.currency, 'USD');
    assert.equal(c.commission.eventId, `inv-${run}`);
    const mine = await collect(op.commissions.iterateForPartner(partner.id));
    assert.deepEqual(mine.map((x) => x.id), [commissionId]);
    // Several partners, listed one page of 2 at a time: every one exactly once, newest first.
    const extra = [];
    for (let i = 0; i < 4; i++) {
      extra.push(await op.partners.create({ email: `p${i}-${run}@example.com`, name: `P${i}`, sendInvite: false }));
    }
    const pages = await collect(op.pages('/partners', { limit: 2 }));
    assert.ok(pages.length >= 3, `${pages.length} pages`);
    assert.ok(pages.every((p) => p.data.length <= 2 && Array.isArray(p.partners)));
    const seen = pages.flatMap((p) => p.data.map((x) => x.id));
    assert.equal(new Set(seen).size, seen.length, 'no partner twice');
    const iterated = (await collect(op.partners.iterate({ limit: 2 }))).map((x) => x.id);
    assert.equal(new Set(iterated).size, iterated.length, 'no partner twice');
    // (Other test files may add partners meanwhile: compare ours only.)
    const ours = [partner, ...extra].map((p) => p.id);
    const newestFirst = [...ours].reverse();
    assert.deepEqual(seen.filter((id) => ours.includes(id)), newestFirst, 'every one, newest first');
    assert.deepEqual(iterated.filter((id) => ours.includes(id)), newestFirst);
  });

  test('approve, then a payout run and mark paid', async () => {
    const approved = await op.commissions.approve(commissionId);
    assert.equal(approved.commission.status, 'approved');
    await assert.rejects(op.commissions.approve(commissionId), isError(409, 'not_approvable'));
    const runResult = await op.payouts.run();
    assert.equal(runResult.mode, 'manual');
    assert.ok(runResult.runId);
    payout = runResult.payouts.find((p) => p.partnerId === partner.id);
    assert.ok(payout, 'a payout for our partner');
    assert.equal(payout.amount, '20.00');
    assert.equal(payout.currency, 'USD');
    assert.equal(payout.status, 'pending');
    assert.deepEqual(payout.commissionIds, [commissionId]);
    const paid = await op.payouts.markPaid(payout.id);
    assert.equal(paid.payout.status, 'paid');
    await assert.rejects(op.payouts.markPaid(payout.id), isError(409, 'not_pending'));
    const got = await op.payouts.get(payout.id);
    assert.equal(got.payout.status, 'paid');
    const c = await op.commissions.get(commissionId);
    assert.equal(c.commission.status, 'paid');
    assert.equal(c.commission.payoutId, payout.id);
    const listed = await collect(op.payouts.iterate({ partnerId: partner.id }));
    assert.ok(listed.some((p) => p.id === payout.id));
  });

  test('a refund of the paid event claws back half; refunding more than remains is 409', async () => {
    const refund = await op.refund({ userId, refundOf: `inv-${run}`, value: '50.00', currency: 'USD', eventId: `refund-${run}` });
    assert.equal(refund.ok, true);
    assert.ok(refund.refund, JSON.stringify(refund));
    assert.equal(refund.refund.refundOf, `inv-${run}`);
    assert.equal(refund.refund.adjustments.length, 1);
    assert.equal(refund.refund.adjustments[0].amount, '-10.00');
    assert.equal(refund.refund.adjustments[0].partnerId, partner.id);
    await assert.rejects(
      op.refund({ userId, refundOf: `inv-${run}`, value: '80.00', currency: 'USD', eventId: `refund2-${run}` }),
      isError(409, 'over_refund'),
    );
    const mine = await collect(op.commissions.iterateForPartner(partner.id));
    assert.deepEqual(mine.map((c) => c.amount).sort(), ['-10.00', '20.00']);
  });

  test('an Idempotency-Key replays the first answer; reusing it for another body is 409', async () => {
    const key = `sdk-${run}-partner`;
    const body = { email: `idem-${run}@example.com`, name: 'Idem', sendInvite: false };
    const first = await op.requestWithResponse('POST', '/partners', body, { idempotencyKey: key });
    assert.equal(first.status, 201);
    assert.equal(first.replayed, false);
    const second = await op.requestWithResponse('POST', '/partners', body, { idempotencyKey: key });
    assert.equal(second.status, 201);
    assert.equal(second.replayed, true);
    assert.deepEqual(second.data, first.data);
    // The resource method with the same key answers the same partner, not 409 email_taken.
    const third = await op.partners.create(body, { idempotencyKey: key });
    assert.equal(third.id, first.data.id);
    await assert.rejects(op.partners.create({ ...body, name: 'Other' }, { idempotencyKey: key }), isError(409, 'idempotency_key_reused'));
    // A payout run with a key: replayed, no second run.
    const runKey = `sdk-${run}-payout`;
    const a = await op.payouts.run({}, { idempotencyKey: runKey });
    const b = await op.requestWithResponse('POST', '/payouts/run', {}, { idempotencyKey: runKey });
    assert.equal(b.replayed, true);
    assert.equal(b.data.runId, a.runId);
  });

  test('errors map to OpenPartnerError: 404, 409, 400 with field, 401, 400 invalid_query', async () => {
    await assert.rejects(op.partners.get('01ZZZZZZZZZZZZZZZZZZZZZZZZ'), isError(404, 'not_found'));
    await assert.rejects(op.identify({ cref: '01ZZZZZZZZZZZZZZZZZZZZZZZZ', userId }), isError(404, 'click_not_found'));
    await assert.rejects(
      op.partners.create({ email: `ANN-${run}@example.com`, name: 'Dup', sendInvite: false }),
      isError(409, 'email_taken'),
    );
    await assert.rejects(op.links.create(partner.id, { linkKey: link.linkKey, campaignId: campaign.id }), isError(409, 'linkKey_taken'));
    const bad = await op.request('POST', '/partners', { email: `x-${run}@example.com`, name: '' }).catch((e) => e);
    assert.ok(bad instanceof OpenPartnerError);
    assert.equal(bad.status, 400);
    assert.equal(bad.code, 'invalid_body');
    assert.equal(bad.field, 'name');
    assert.equal(typeof bad.detail, 'string');
    assert.ok(bad.requestId);
    await assert.rejects(op.partners.list({ limit: 0 }), isError(400, 'invalid_query'));
    await assert.rejects(op.request('GET', '/partners', undefined, { query: { cursor: 'tampered' } }), isError(400, 'invalid_cursor'));
    const stranger = createClient({ baseUrl, apiKey: `op_${'0'.repeat(48)}`, maxRetries: 0 });
    await assert.rejects(stranger.partners.list(), isError(401, 'unauthorized'));
    await assert.rejects(op.request('GET', '/no-such-route'), isError(404, 'not_found'));
  });

  test('a real delivery verifies with verifyWebhook (both schemes); a tampered one is rejected', async () => {
    const d = await hooks.waitFor((x) => x.body.event === 'commission.accrued' && x.body.data?.commission?.id === commissionId, 'commission.accrued');
    assert.equal(d.headers['user-agent'], 'OpenPartner-Webhooks/1');
    assert.equal(d.headers['x-openpartner-event'], 'commission.accrued');
    assert.equal(d.headers['webhook-id'], d.body.id);
    assert.equal(verifyWebhook(d.raw, d.headers, secret), true);
    assert.equal(verifyWebhook(d.raw.toString('utf8'), d.headers, secret, { scheme: 'openpartner' }), true);
    assert.equal(verifyWebhook(d.raw, d.headers, secret, { scheme: 'standard' }), true);
    assert.equal(await verifyWebhookAsync(d.raw, new Headers(d.headers), secret), true);
    const tampered = d.raw.toString('utf8').replace('"20.00"', '"2000.00"');
    assert.notEqual(tampered, d.raw.toString('utf8'));
    for (const scheme of ['standard', 'openpartner']) {
      assert.throws(() => verifyWebhook(tampered, d.headers, secret, { scheme }), (e) => e instanceof WebhookVerificationError && e.code === 'invalid_signature');
    }
    const other = (await op.webhooks.create({ url: 'https://hooks.example.com/x', events: ['*'] }));
    assert.throws(() => verifyWebhook(d.raw, d.headers, other.secret), WebhookVerificationError);
    await op.webhooks.delete(other.endpoint.id, { hard: true });
    // The delivery was signed in the last few seconds: with a zero-second tolerance a minute from now it is stale.
    assert.throws(() => verifyWebhook(d.raw, d.headers, secret, { now: Math.floor(Date.now() / 1000) + 60, toleranceSeconds: 0 }), (e) => e.code === 'timestamp_out_of_tolerance');
    // The other events of the path were delivered too.
    for (const ev of ['partner.created', 'commission.approved', 'commission.paid', 'payout.created']) {
      const x = await hooks.waitFor((y) => y.body.event === ev, ev);
      assert.equal(verifyWebhook(x.raw, x.headers, secret), true, ev);
    }
  });

  test('test fires and the delivery log; after a secret rotation both secrets verify', async () => {
    const fired = await op.webhooks.test(endpoint.id, { event: 'commission.paid' });
    assert.equal(fired.delivery.status, 'delivered');
    assert.equal(fired.event.event, 'commission.paid');
    const d1 = await hooks.waitFor((x) => x.body.id === fired.event.id, 'the test fire');
    assert.equal(verifyWebhook(d1.raw, d1.headers, secret), true);
    const log = await collect(op.webhooks.iterateDeliveries(endpoint.id, { limit: 2 }));
    assert.ok(log.some((x) => x.id === fired.delivery.id));
    assert.ok(log.length >= 3);

    const rotated = await op.webhooks.rotateSecret(endpoint.id);
    assert.notEqual(rotated.secret, secret);
    const fired2 = await op.webhooks.test(endpoint.id);
    const d2 = await hooks.waitFor((x) => x.body.id === fired2.event.id, 'the test fire after rotation');
    assert.equal(d2.body.event, 'webhook.test');
    assert.equal(d2.headers['webhook-signature'].split(' ').length, 2);
    assert.ok(d2.headers['x-openpartner-signature-previous']);
    for (const scheme of ['standard', 'openpartner']) {
      assert.equal(verifyWebhook(d2.raw, d2.headers, rotated.secret, { scheme }), true);
      assert.equal(verifyWebhook(d2.raw, d2.headers, secret, { scheme }), true);
      assert.equal(verifyWebhook(d2.raw, d2.headers, [secret, rotated.secret], { scheme }), true);
    }
    const retried = await op.webhooks.retryDelivery(endpoint.id, fired2.delivery.id);
    assert.equal(retried.delivery.status, 'delivered');
  });

  test('the other resources answer through the client', async () => {
    const page = await op.campaigns.list({ limit: 1 });
    assert.equal(page.data.length, 1);
    const updated = await op.campaigns.update(campaign.id, { holdbackDays: 3 });
    assert.equal(updated.holdbackDays, 3);
    const viaPrograms = await op.programs.get(campaign.id);
    assert.equal(viaPrograms.id, campaign.id);
    const serverClick = await op.clicks.record({ linkKey: link.linkKey, ip: '203.0.113.7', userAgent: 'sdk-test' });
    assert.ok(serverClick.clickId);
    const re = await op.attribution.rederive({ campaignId: campaign.id });
    assert.equal(re.ok, true);
    const key = await op.apiKeys.create({ label: `sdk ${run}`, scopes: ['partners:read'] });
    assert.match(key.key, /^op_[0-9a-f]{48}$/);
    const scoped = createClient({ baseUrl, apiKey: key.key });
    assert.deepEqual((await scoped.auth.introspect()).scopes, ['partners:read']);
    await assert.rejects(scoped.campaigns.list(), (e) => e.status === 403);
    const keys = await collect(op.apiKeys.iterate());
    const listed = keys.find((k) => k.id === key.id);
    assert.ok(listed);
    assert.equal(listed.key, undefined, 'never the plaintext');
    await op.apiKeys.revoke(key.id);
    await assert.rejects(scoped.partners.list({ limit: 1 }), isError(401, 'unauthorized'));
    const admin = await op.admins.create({ email: `admin-${run}@example.com`, name: 'Second Admin', sendInvite: false });
    const admins = await collect(op.admins.iterate());
    assert.ok(admins.some((a) => a.id === admin.id));
    await op.admins.revoke(admin.id);
    const revoked = await op.partners.revoke(extraPartner(), { reason: 'test', notify: false });
    assert.equal(revoked.ok, true);
    const doc = await op.openapi();
    assert.equal(doc.openapi.slice(0, 3), '3.1');
  });

  // A partner of this run that nothing else uses (created on demand).
  let spare;
  function extraPartner() {
    return spare;
  }
  before(async () => {
    spare = (await op.partners.create({ email: `spare-${run}@example.com`, name: 'Spare', sendInvite: false })).id;
  });
});
