// verifyWebhook / verifyWebhookAsync: both signature schemes, tampering, wrong and rotated
// secrets, timestamp tolerance, header and body forms. Signatures are computed here
// independently with node:crypto, following API.md's description of each scheme.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { verifyWebhook, verifyWebhookAsync, unwrapWebhook, WebhookVerificationError } from '@openpartner/sdk/server';

const newSecret = () => `whsec_${randomBytes(24).toString('base64')}`;
const original = (secret, ts, body) => createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex');
const standard = (secret, id, ts, body) =>
  `v1,${createHmac('sha256', Buffer.from(secret.slice(6), 'base64')).update(`${id}.${ts}.${body}`).digest('base64')}`;

/** The headers the API sends, signed by `secrets` (current first, as during a rotation). */
function sign(secrets, body, { ts = Math.floor(Date.now() / 1000), id = 'evt_01TEST' } = {}) {
  const h = {
    'content-type': 'application/json',
    'user-agent': 'OpenPartner-Webhooks/1',
    'x-openpartner-timestamp': String(ts),
    'x-openpartner-event': 'commission.accrued',
    'x-openpartner-delivery': id,
    'webhook-id': id,
    'webhook-timestamp': String(ts),
    'x-openpartner-signature': original(secrets[0], ts, body),
    'webhook-signature': secrets.map((s) => standard(s, id, ts, body)).join(' '),
  };
  if (secrets[1]) h['x-openpartner-signature-previous'] = original(secrets[1], ts, body);
  return h;
}

const body = JSON.stringify({ id: 'evt_01TEST', event: 'commission.accrued', created: '2026-01-01T00:00:00.000Z', data: { amount: '12.00' } });

for (const [name, verify] of [
  ['verifyWebhook (node:crypto)', async (...a) => verifyWebhook(...a)],
  ['verifyWebhookAsync (WebCrypto)', (...a) => verifyWebhookAsync(...a)],
]) {
  describe(name, () => {
    const secret = newSecret();
    const reason = (code) => (e) => e instanceof WebhookVerificationError && e.code === code;

    test('a valid delivery verifies with either scheme', async () => {
      const h = sign([secret], body);
      assert.equal(await verify(body, h, secret), true);
      assert.equal(await verify(body, h, secret, { scheme: 'standard' }), true);
      assert.equal(await verify(body, h, secret, { scheme: 'openpartner' }), true);
      // Only the original headers (an older sender), only the Standard Webhooks ones.
      const { 'webhook-signature': _s, ...onlyOriginal } = h;
      assert.equal(await verify(body, onlyOriginal, secret), true);
      const onlyStandard = Object.fromEntries(Object.entries(h).filter(([k]) => !k.startsWith('x-openpartner-')));
      assert.equal(await verify(body, onlyStandard, secret), true);
    });

    test('a tampered body is rejected by both schemes', async () => {
      const h = sign([secret], body);
      const tampered = body.replace('12.00', '99.00');
      for (const scheme of ['auto', 'standard', 'openpartner']) {
        await assert.rejects(async () => verify(tampered, h, secret, { scheme }), reason('invalid_signature'));
      }
    });

    test('a wrong secret is rejected by both schemes', async () => {
      const h = sign([secret], body);
      for (const scheme of ['standard', 'openpartner']) {
        await assert.rejects(async () => verify(body, h, newSecret(), { scheme }), reason('invalid_signature'));
      }
    });

    test('a stale or future timestamp is rejected; the tolerance is configurable', async () => {
      const now = Math.floor(Date.now() / 1000);
      for (const scheme of ['standard', 'openpartner']) {
        const stale = sign([secret], body, { ts: now - 301 });
        await assert.rejects(async () => verify(body, stale, secret, { scheme }), reason('timestamp_out_of_tolerance'));
        const future = sign([secret], body, { ts: now + 400 });
        await assert.rejects(async () => verify(body, future, secret, { scheme }), reason('timestamp_out_of_tolerance'));
        assert.equal(await verify(body, stale, secret, { scheme, toleranceSeconds: 600 }), true);
        const edge = sign([secret], body, { ts: now - 290 });
        assert.equal(await verify(body, edge, secret, { scheme }), true);
      }
      // A timestamp header changed to look fresh breaks the signature.
      const old = sign([secret], body, { ts: now - 1000 });
      old['webhook-timestamp'] = old['x-openpartner-timestamp'] = String(now);
      await assert.rejects(async () => verify(body, old, secret), reason('invalid_signature'));
    });

    test('rotation: a delivery signed by the new and the previous secret verifies with either', async () => {
      const next = newSecret();
      const h = sign([next, secret], body);
      assert.equal(h['webhook-signature'].split(' ').length, 2);
      for (const scheme of ['standard', 'openpartner']) {
        assert.equal(await verify(body, h, next, { scheme }), true);
        assert.equal(await verify(body, h, secret, { scheme }), true);
        // The receiver may hold both secrets too.
        assert.equal(await verify(body, h, [newSecret(), next], { scheme }), true);
        await assert.rejects(async () => verify(body, h, [newSecret(), newSecret()], { scheme }), reason('invalid_signature'));
      }
    });

    test('missing headers, bad timestamps, parsed bodies and empty secrets are rejected', async () => {
      await assert.rejects(async () => verify(body, {}, secret), reason('missing_headers'));
      const h = sign([secret], body);
      await assert.rejects(async () => verify(body, { ...h, 'webhook-timestamp': 'soon', 'x-openpartner-timestamp': 'soon' }, secret), reason('invalid_timestamp'));
      await assert.rejects(async () => verify(JSON.parse(body), h, secret), reason('invalid_body'));
      await assert.rejects(async () => verify(body, h, ''), reason('invalid_secret'));
      await assert.rejects(async () => verify(body, { ...h, 'webhook-signature': 'v1,not-base64!!' }, secret, { scheme: 'standard' }), reason('missing_headers'));
    });

    test('headers as a fetch Headers object or with any case; bodies as Buffer, Uint8Array or ArrayBuffer', async () => {
      const h = sign([secret], body);
      assert.equal(await verify(body, new Headers(h), secret), true);
      // The signatures as two header lines (fetch joins them with ", ").
      const next = newSecret();
      const two = sign([next, secret], body);
      const lines = new Headers(Object.entries(two).filter(([k]) => k !== 'webhook-signature'));
      for (const sig of two['webhook-signature'].split(' ')) lines.append('webhook-signature', sig);
      assert.match(lines.get('webhook-signature'), /^v1,\S+, v1,\S+$/);
      assert.equal(await verify(body, lines, secret, { scheme: 'standard' }), true);
      assert.equal(await verify(body, lines, next, { scheme: 'standard' }), true);
      const upper = Object.fromEntries(Object.entries(h).map(([k, v]) => [k.replace(/(^|-)([a-z])/g, (m) => m.toUpperCase()), v]));
      assert.equal(await verify(body, upper, secret), true);
      const buf = Buffer.from(body);
      assert.equal(await verify(buf, h, secret), true);
      assert.equal(await verify(new Uint8Array(buf), h, secret), true);
      assert.equal(await verify(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length), h, secret), true);
    });

    test("Standard Webhooks' published test vector", async () => {
      const h = {
        'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
        'webhook-timestamp': '1614265330',
        'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
      };
      const opts = { now: 1614265330 };
      assert.equal(await verify('{"test": 2432232314}', h, 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', opts), true);
      await assert.rejects(async () => verify('{"test": 2432232315}', h, 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', opts), reason('invalid_signature'));
    });

    test('secrets imported from the original (base64url alphabet) verify', async () => {
      let s;
      do s = `whsec_${randomBytes(24).toString('base64url')}`; while (!/[-_]/.test(s.slice(6)));
      const ts = Math.floor(Date.now() / 1000);
      const sig = `v1,${createHmac('sha256', Buffer.from(s.slice(6), 'base64url')).update(`m1.${ts}.${body}`).digest('base64')}`;
      assert.equal(await verify(body, { 'webhook-id': 'm1', 'webhook-timestamp': String(ts), 'webhook-signature': sig }, s), true);
    });
  });
}

test('unwrapWebhook verifies and parses the envelope', () => {
  const secret = newSecret();
  const env = unwrapWebhook(body, sign([secret], body), secret);
  assert.equal(env.event, 'commission.accrued');
  assert.equal(env.data.amount, '12.00');
  assert.throws(() => unwrapWebhook(body, sign([secret], body), newSecret()), WebhookVerificationError);
});
