/**
 * The transport under every server call: URL and query building, the bearer key,
 * `Idempotency-Key` on POSTs, timeouts, retries with exponential backoff and jitter, and
 * error mapping.
 *
 * Retry rules (the API's own semantics decide what is safe):
 * - `429 rate_limited` is retried for every method (the request was refused, not run),
 *   after `Retry-After` (seconds or an HTTP date) when the answer carries it;
 * - `5xx` answers, network errors and timeouts are retried only for calls that are safe to
 *   repeat: GET, HEAD, OPTIONS, DELETE, PUT, and any call carrying an `Idempotency-Key`
 *   (the API replays the first answer, and releases the key after a 5xx);
 * - `409 idempotency_key_in_progress` (our own earlier attempt is still running on the
 *   server) is retried too.
 * The same `Idempotency-Key` is sent on every attempt of one call.
 */
import { OpenPartnerError, errorFromResponse, parseBody, VERSION } from '../shared.js';

export type QueryValue = string | number | boolean | null | undefined | ReadonlyArray<string | number | boolean>;
export type Query = Record<string, QueryValue>;

export interface ClientOptions {
  /** The tenant's API base URL: `https://<host>/api/t/<slug>` (hosted) or `https://<host>/api` (self-hosted). */
  baseUrl: string;
  /** An admin, scoped or partner API key (`op_...`). Server-side only: never ship it to a browser. */
  apiKey?: string;
  /** A `fetch` to use instead of the global one (tests, proxies, instrumentation). */
  fetch?: typeof fetch;
  /** Retries after the first attempt (default 2, so at most 3 attempts). 0 disables retries. */
  maxRetries?: number;
  /** Per-attempt timeout in milliseconds (default 30 000). */
  timeoutMs?: number;
  /** First backoff step in milliseconds (default 500); doubles per retry, with jitter. */
  retryBaseDelayMs?: number;
  /** Longest backoff in milliseconds (default 8 000). */
  retryMaxDelayMs?: number;
  /** A `Retry-After` longer than this (default 60 000 ms) is not waited for: the error is thrown. */
  maxRetryAfterMs?: number;
  /** Extra headers sent on every request. */
  headers?: Record<string, string>;
}

export interface RequestOptions {
  /** Query parameters; `undefined`/`null` values are left out, arrays repeat the name. */
  query?: Query;
  /**
   * The `Idempotency-Key` of a POST. Default: a random UUID per call, the same on each of
   * its retries. Pass your own (e.g. derived from your order id) to make the call safe
   * across process restarts, or `false` to send none (the call is then not retried on
   * 5xx or network errors).
   */
  idempotencyKey?: string | false;
  /** Extra headers for this call. */
  headers?: Record<string, string>;
  /** `X-Request-Id` to send (the API echoes it and logs it). */
  requestId?: string;
  /** Cancels the call, including waits between retries. */
  signal?: AbortSignal;
  /** Overrides the client's `maxRetries` for this call. */
  maxRetries?: number;
  /** Overrides the client's `timeoutMs` for this call. */
  timeoutMs?: number;
}

/** An answer with its status and headers (`requestWithResponse`). */
export interface ApiResponse<T> {
  data: T;
  status: number;
  headers: Headers;
  /** `X-Request-Id` of the answer. */
  requestId?: string;
  /** True when the API replayed a stored answer for the `Idempotency-Key` (`Idempotent-Replayed: true`). */
  replayed: boolean;
  /** The `Idempotency-Key` sent, if any. */
  idempotencyKey?: string;
  /** How many attempts the call took. */
  attempts: number;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE', 'PUT']);

export function newIdempotencyKey(): string {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  if (c && typeof c.getRandomValues === 'function') {
    const b = c.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  throw new Error('no WebCrypto in this runtime: pass idempotencyKey explicitly');
}

/** Milliseconds to wait according to a `Retry-After` value (delta seconds or an HTTP date), or null. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (!value) return null;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - now);
}

export function buildUrl(baseUrl: string, path: string, query?: Query): string {
  const base = baseUrl.replace(/\/+$/, '');
  const p = path.startsWith('/') ? path : `/${path}`;
  let url = base + p;
  if (query) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null) continue;
      if (Array.isArray(v)) for (const item of v) qs.append(k, String(item));
      else qs.append(k, String(v));
    }
    const s = qs.toString();
    if (s) url += (url.includes('?') ? '&' : '?') + s;
  }
  return url;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function isNodeLike(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return !!p?.versions?.node && typeof (globalThis as { window?: unknown }).window === 'undefined';
}

export class Transport {
  readonly baseUrl: string;
  private readonly apiKey?: string;
  private readonly fetchImpl: typeof fetch;
  private readonly maxRetries: number;
  private readonly timeoutMs: number;
  private readonly baseDelay: number;
  private readonly maxDelay: number;
  private readonly maxRetryAfter: number;
  private readonly headers: Record<string, string>;

  constructor(opts: ClientOptions) {
    if (!opts || typeof opts.baseUrl !== 'string' || !/^https?:\/\//.test(opts.baseUrl)) {
      throw new OpenPartnerError('baseUrl must be an http(s) URL', 400, 'config_missing');
    }
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.apiKey = opts.apiKey;
    const f = opts.fetch ?? (globalThis as { fetch?: typeof fetch }).fetch;
    if (!f) throw new OpenPartnerError('no fetch in this runtime: pass options.fetch', 400, 'config_missing');
    this.fetchImpl = f;
    this.maxRetries = Math.max(0, opts.maxRetries ?? 2);
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.baseDelay = opts.retryBaseDelayMs ?? 500;
    this.maxDelay = opts.retryMaxDelayMs ?? 8_000;
    this.maxRetryAfter = opts.maxRetryAfterMs ?? 60_000;
    this.headers = { ...(opts.headers ?? {}) };
  }

  /** Backoff before retry number `n` (0-based): exponential, capped, with "equal jitter". */
  backoff(n: number): number {
    const cap = Math.min(this.maxDelay, this.baseDelay * 2 ** n);
    return Math.round(cap / 2 + Math.random() * (cap / 2));
  }

  async send<T>(method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
    const m = method.toUpperCase();
    const url = buildUrl(this.baseUrl, path, opts.query);
    const headers: Record<string, string> = { accept: 'application/json', ...this.headers };
    if (isNodeLike()) headers['user-agent'] = `openpartner-sdk-js/${VERSION}`;
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    let payload: string | undefined;
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = typeof body === 'string' ? body : JSON.stringify(body);
    }
    let idempotencyKey: string | undefined;
    if (m === 'POST' && opts.idempotencyKey !== false) {
      idempotencyKey = opts.idempotencyKey || newIdempotencyKey();
      headers['idempotency-key'] = idempotencyKey;
    }
    if (opts.requestId) headers['x-request-id'] = opts.requestId;
    Object.assign(headers, opts.headers ?? {});
    const safe = SAFE_METHODS.has(m) || !!idempotencyKey;
    const maxRetries = Math.max(0, opts.maxRetries ?? this.maxRetries);
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;

    for (let attempt = 0; ; attempt++) {
      const canRetry = attempt < maxRetries;
      const ctrl = new AbortController();
      const onAbort = () => ctrl.abort(opts.signal!.reason);
      if (opts.signal) {
        if (opts.signal.aborted) throw abortedError(opts.signal.reason);
        opts.signal.addEventListener('abort', onAbort, { once: true });
      }
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        ctrl.abort(new Error(`timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      let res: Response;
      let text: string;
      try {
        res = await this.fetchImpl(url, { method: m, headers, body: payload, signal: ctrl.signal });
        text = await res.text();
      } catch (cause) {
        if (opts.signal?.aborted) throw abortedError(opts.signal.reason);
        const err = new OpenPartnerError(
          timedOut ? `${m} ${path}: timed out after ${timeoutMs} ms` : `${m} ${path}: network error (${describe(cause)})`,
          0,
          timedOut ? 'timeout' : 'network_error',
          undefined,
          { cause },
        );
        if (safe && canRetry) {
          await this.wait(this.backoff(attempt), opts.signal);
          continue;
        }
        throw err;
      } finally {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      }

      const data = parseBody(text);
      if (res.ok) {
        return {
          data: data as T,
          status: res.status,
          headers: res.headers,
          requestId: res.headers.get('x-request-id') ?? undefined,
          replayed: res.headers.get('idempotent-replayed') === 'true',
          idempotencyKey,
          attempts: attempt + 1,
        };
      }
      const err = errorFromResponse(res, data);
      if (canRetry) {
        const delay = this.retryDelay(res, err, safe, attempt, !!idempotencyKey);
        if (delay !== null) {
          await this.wait(delay, opts.signal);
          continue;
        }
      }
      throw err;
    }
  }

  /** How long to wait before retrying this answer, or null when it must not be retried. */
  private retryDelay(res: Response, err: OpenPartnerError, safe: boolean, attempt: number, keyed: boolean): number | null {
    const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
    if (res.status === 429 || (res.status >= 500 && safe)) {
      if (retryAfter !== null) return retryAfter > this.maxRetryAfter ? null : retryAfter;
      return this.backoff(attempt);
    }
    if (res.status === 409 && keyed && err.code === 'idempotency_key_in_progress') {
      return this.backoff(attempt);
    }
    return null;
  }

  private async wait(ms: number, signal?: AbortSignal): Promise<void> {
    try {
      await sleep(ms, signal);
    } catch (reason) {
      throw abortedError(reason);
    }
  }
}

function abortedError(reason: unknown): OpenPartnerError {
  return new OpenPartnerError('request aborted', 0, 'aborted', undefined, { cause: reason });
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const c = (e as Error & { cause?: unknown }).cause;
    const code = c && typeof c === 'object' && 'code' in c ? String((c as { code: unknown }).code) : '';
    return code ? `${e.message}: ${code}` : e.message;
  }
  return String(e);
}
