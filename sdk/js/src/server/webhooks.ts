/**
 * Webhook signature verification, for both schemes the API signs every delivery with:
 *
 * - the original OpenPartner scheme: `X-OpenPartner-Timestamp` (unix seconds) and
 *   `X-OpenPartner-Signature` = lowercase hex HMAC-SHA256 over `<timestamp>.<raw body>`,
 *   keyed by the whole secret string (`whsec_...`); during a secret rotation the previous
 *   secret's signature comes in `X-OpenPartner-Signature-Previous`;
 * - Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature` =
 *   space-separated `v1,<base64 HMAC-SHA256 over "<id>.<timestamp>.<body>">`, keyed by the
 *   base64-decoded part after `whsec_` (either base64 alphabet); one entry per live secret.
 *
 * `verifyWebhook` returns `true` for a valid delivery and THROWS `WebhookVerificationError`
 * otherwise (it never returns false). It is synchronous and uses node:crypto's HMAC and
 * `timingSafeEqual` (Node, Bun, Deno). `verifyWebhookAsync` does the same with WebCrypto
 * (`crypto.subtle.verify`, a constant-time check) for runtimes without node:crypto, such
 * as Cloudflare Workers and browsers.
 */
import type { WebhookEnvelope } from './types.js';

export type WebhookBody = string | Uint8Array | ArrayBuffer;
/** A fetch `Headers`, Node's `req.headers`, or any plain object of header names (any case) to values. */
export type WebhookHeaders =
  | { get(name: string): string | null | undefined }
  | Record<string, string | string[] | undefined | null>;

export interface VerifyWebhookOptions {
  /** Largest accepted distance between the delivery's timestamp and now, in seconds (default 300). */
  toleranceSeconds?: number;
  /** Which signature to check: `auto` (default: Standard Webhooks if present, else the original), `standard`, `openpartner`. */
  scheme?: 'auto' | 'standard' | 'openpartner';
  /** "Now" in unix seconds (tests). */
  now?: number;
}

export type WebhookVerificationCode =
  | 'missing_headers'
  | 'invalid_timestamp'
  | 'timestamp_out_of_tolerance'
  | 'invalid_signature'
  | 'invalid_secret'
  | 'invalid_body'
  | 'crypto_unavailable';

/** Thrown by `verifyWebhook` for any delivery that is not valid; `code` says why. */
export class WebhookVerificationError extends Error {
  readonly code: WebhookVerificationCode;
  constructor(code: WebhookVerificationCode, message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
    this.code = code;
  }
}

declare const require: ((id: string) => unknown) | undefined;
/** Set by the build: true in the CommonJS bundles. */
declare const __CJS__: boolean;

const enc = new TextEncoder();

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as { get?: unknown }).get === 'function') {
    const v = (headers as { get(n: string): string | null | undefined }).get(name);
    return v == null ? undefined : String(v);
  }
  const obj = headers as Record<string, string | string[] | undefined | null>;
  for (const k of Object.keys(obj)) {
    if (k.toLowerCase() !== name) continue;
    const v = obj[k];
    if (v == null) return undefined;
    return Array.isArray(v) ? v.join(' ') : String(v);
  }
  return undefined;
}

function bodyBytes(body: WebhookBody): Uint8Array {
  if (typeof body === 'string') return enc.encode(body);
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  throw new WebhookVerificationError(
    'invalid_body',
    'pass the raw request body (string, Buffer/Uint8Array or ArrayBuffer), not parsed JSON: the signature covers the exact bytes',
  );
}

function concat(prefix: string, body: Uint8Array): Uint8Array {
  const p = enc.encode(prefix);
  const out = new Uint8Array(p.length + body.length);
  out.set(p, 0);
  out.set(body, p.length);
  return out;
}

function base64ToBytes(s: string): Uint8Array | null {
  let t = s.trim().replace(/-/g, '+').replace(/_/g, '/');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t)) return null;
  t = t.replace(/=+$/, '');
  if (t.length % 4 === 1) return null;
  t += '='.repeat((4 - (t.length % 4)) % 4);
  try {
    const bin = atob(t);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return null;
  }
}

function hexToBytes(s: string): Uint8Array | null {
  const t = s.trim().toLowerCase();
  if (!/^(?:[0-9a-f]{2})+$/.test(t)) return null;
  const out = new Uint8Array(t.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(t.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** One HMAC-SHA256 to check: the key, the signed bytes, and the signatures it may match. */
interface Check {
  key: Uint8Array;
  message: Uint8Array;
  signatures: Uint8Array[];
}

/**
 * Everything but the cryptography: picks the scheme, checks the timestamp, and lists the
 * (key, message, candidate signatures) pairs of which one must match.
 */
function plan(body: WebhookBody, headers: WebhookHeaders, secret: string | readonly string[], options: VerifyWebhookOptions): Check[] {
  const secrets = (Array.isArray(secret) ? secret : [secret]).filter((s): s is string => typeof s === 'string' && s.length > 0);
  if (secrets.length === 0) throw new WebhookVerificationError('invalid_secret', 'no webhook secret given');
  const bytes = bodyBytes(body);
  const tolerance = options.toleranceSeconds ?? 300;
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const scheme = options.scheme ?? 'auto';

  const stdId = header(headers, 'webhook-id');
  const stdTs = header(headers, 'webhook-timestamp');
  const stdSigs = (header(headers, 'webhook-signature') ?? '')
    .split(/\s+/)
    // Repeated header lines arrive joined with ", " by fetch's Headers.
    .map((p) => p.replace(/,$/, ''))
    .filter((p) => p.startsWith('v1,'))
    .map((p) => base64ToBytes(p.slice(3)))
    .filter((b): b is Uint8Array => b !== null && b.length === 32);
  const opTs = header(headers, 'x-openpartner-timestamp');
  const opSigs = [header(headers, 'x-openpartner-signature'), header(headers, 'x-openpartner-signature-previous')]
    .filter((v): v is string => !!v)
    .flatMap((v) => v.split(/[ ,]+/))
    .map(hexToBytes)
    .filter((b): b is Uint8Array => b !== null && b.length === 32);

  const stdKeys = secrets
    .map((s) => base64ToBytes(s.startsWith('whsec_') ? s.slice(6) : s))
    .filter((k): k is Uint8Array => k !== null && k.length > 0);
  const haveStd = !!stdId && !!stdTs && stdSigs.length > 0;
  const haveOp = !!opTs && opSigs.length > 0;
  // auto: Standard Webhooks when the delivery carries it and the secret is a whsec_ secret.
  const useStd = scheme === 'standard' || (scheme === 'auto' && haveStd && (stdKeys.length > 0 || !haveOp));
  if (useStd ? !haveStd : !haveOp) {
    throw new WebhookVerificationError(
      'missing_headers',
      useStd || scheme === 'auto'
        ? 'no webhook signature headers (webhook-id/-timestamp/-signature or X-OpenPartner-Timestamp/-Signature)'
        : 'no X-OpenPartner-Timestamp / X-OpenPartner-Signature headers',
    );
  }
  const ts = (useStd ? stdTs : opTs)!.trim();
  if (!/^\d{1,12}$/.test(ts)) throw new WebhookVerificationError('invalid_timestamp', `invalid webhook timestamp ${JSON.stringify(ts)}`);
  if (Math.abs(now - Number(ts)) > tolerance) {
    throw new WebhookVerificationError(
      'timestamp_out_of_tolerance',
      `webhook timestamp ${ts} is more than ${tolerance} s away from now (${now})`,
    );
  }
  if (useStd) {
    if (stdKeys.length === 0) throw new WebhookVerificationError('invalid_secret', 'the secret is not a whsec_<base64> secret');
    const message = concat(`${stdId}.${ts}.`, bytes);
    return stdKeys.map((key) => ({ key, message, signatures: stdSigs }));
  }
  const message = concat(`${ts}.`, bytes);
  return secrets.map((s) => ({ key: enc.encode(s), message, signatures: opSigs }));
}

function fail(): never {
  throw new WebhookVerificationError('invalid_signature', 'no webhook signature matches the body and secret');
}

interface NodeCrypto {
  createHmac(alg: string, key: Uint8Array): { update(d: Uint8Array): { digest(): Uint8Array } };
  timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean;
}

function nodeCrypto(): NodeCrypto | null {
  const p = (globalThis as { process?: { getBuiltinModule?: (n: string) => unknown } }).process;
  if (p && typeof p.getBuiltinModule === 'function') {
    try {
      return p.getBuiltinModule('node:crypto') as NodeCrypto;
    } catch {
      /* fall through */
    }
  }
  // The CommonJS build can still reach it on Node versions without getBuiltinModule.
  if (typeof __CJS__ !== 'undefined' && __CJS__ && typeof require === 'function') {
    try {
      return require('node:crypto') as NodeCrypto;
    } catch {
      /* not Node */
    }
  }
  return null;
}

/**
 * Verifies a webhook delivery: `true`, or throws `WebhookVerificationError`.
 *
 *   verifyWebhook(rawBody, req.headers, process.env.OPENPARTNER_WEBHOOK_SECRET!);
 *
 * `secret` may be a list (e.g. the new and the old secret while you rotate): a match with
 * any of them is enough. Synchronous (node:crypto); see `verifyWebhookAsync` for WebCrypto.
 */
export function verifyWebhook(
  body: WebhookBody,
  headers: WebhookHeaders,
  secret: string | readonly string[],
  options: VerifyWebhookOptions = {},
): true {
  const checks = plan(body, headers, secret, options);
  const c = nodeCrypto();
  if (!c) {
    throw new WebhookVerificationError(
      'crypto_unavailable',
      'node:crypto is not available in this runtime: use verifyWebhookAsync (WebCrypto)',
    );
  }
  let ok = false;
  for (const { key, message, signatures } of checks) {
    const expected = c.createHmac('sha256', key).update(message).digest();
    for (const sig of signatures) {
      // Every candidate is compared (no early exit), each in constant time.
      if (sig.length === expected.length && c.timingSafeEqual(sig, expected)) ok = true;
    }
  }
  return ok ? true : fail();
}

/** `verifyWebhook` on WebCrypto: resolves `true` or rejects with `WebhookVerificationError`. */
export async function verifyWebhookAsync(
  body: WebhookBody,
  headers: WebhookHeaders,
  secret: string | readonly string[],
  options: VerifyWebhookOptions = {},
): Promise<true> {
  const checks = plan(body, headers, secret, options);
  const subtle = (globalThis as { crypto?: Crypto }).crypto?.subtle;
  if (!subtle) throw new WebhookVerificationError('crypto_unavailable', 'WebCrypto (crypto.subtle) is not available');
  let ok = false;
  for (const { key, message, signatures } of checks) {
    const k = await subtle.importKey('raw', key as BufferSource, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
    for (const sig of signatures) {
      if (await subtle.verify('HMAC', k, sig as BufferSource, message as BufferSource)) ok = true;
    }
  }
  return ok ? true : fail();
}

/** Verifies (as `verifyWebhook`) and parses the envelope `{id, event, created, data}`. */
export function unwrapWebhook<D = Record<string, unknown>>(
  body: WebhookBody,
  headers: WebhookHeaders,
  secret: string | readonly string[],
  options: VerifyWebhookOptions = {},
): WebhookEnvelope<D> {
  verifyWebhook(body, headers, secret, options);
  const text = typeof body === 'string' ? body : new TextDecoder().decode(bodyBytes(body));
  return JSON.parse(text) as WebhookEnvelope<D>;
}
