/**
 * `@openpartner/sdk` — the browser part. Captures the `cref` (the click id) that a partner
 * link's redirect puts on the landing URL, keeps it in a first-party cookie and in
 * localStorage (so it survives SPA navigation and Safari's cookie expiry), honours the
 * `_cref` cookie the click router sets when it runs on the same site, and ties the click to
 * your user once you know who they are:
 *
 *   import { OpenPartner } from '@openpartner/sdk';
 *   const op = OpenPartner.init({ apiUrl: 'https://partners.example.com/api/t/acme' });
 *   await op.identify(user.id); // after sign-up or sign-in
 *
 * No dependencies; no credentials are sent (the identify call is a plain CORS request).
 */
import { OpenPartnerError, errorFromResponse, parseBody, VERSION } from './shared.js';
import type { IdentifyResponse } from './shared.js';

export { OpenPartnerError, VERSION };
export type { IdentifyResponse };

export interface OpenPartnerConfig {
  /** Your tenant's API base URL: `https://<host>/api/t/<slug>` (hosted) or `https://<host>/api`. */
  apiUrl: string;
  /** The cookie the click router sets, which the SDK also writes. Default `_cref`. */
  cookieName?: string;
  /** The landing URL's query parameter that carries the click id. Default `cref`. */
  queryParam?: string;
  /** The localStorage key. Default `openpartner:cref`. */
  storageKey?: string;
  /**
   * Called when `identify()` fails (then `identify()` resolves `null`). Default: a console
   * warning. Attribution from the browser is best-effort, so failures never throw.
   */
  onError?: (err: unknown) => void;
  /** `Domain` for the first-party cookie (e.g. `example.com` to share it with subdomains). */
  cookieDomain?: string;
  /** Lifetime of the first-party cookie in days. Default 90 (the router's own cookie lifetime). */
  cookieMaxAgeDays?: number;
  /** Write the first-party cookie at all. Default true. */
  persistCookie?: boolean;
  /** A `fetch` to use instead of the global one. */
  fetch?: typeof fetch;
}

/** Click ids are ULIDs; accept any short URL-safe token, never anything that could break a cookie. */
const TOKEN = /^[A-Za-z0-9_-]{1,128}$/;

function validToken(v: string | null | undefined): string | null {
  if (typeof v !== 'string') return null;
  const t = v.trim();
  return TOKEN.test(t) ? t : null;
}

function storage(): Storage | null {
  try {
    // Accessing localStorage throws when storage is blocked (some privacy modes, sandboxed frames).
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null;
  }
}

export class OpenPartner {
  private readonly apiUrl: string;
  private readonly cookieName: string;
  private readonly queryParam: string;
  private readonly storageKey: string;
  private readonly onError: (err: unknown) => void;
  private readonly cookieDomain?: string;
  private readonly cookieMaxAge: number;
  private readonly persistCookie: boolean;
  private readonly fetchImpl?: typeof fetch;
  private cref: string | null = null;

  private constructor(config: OpenPartnerConfig) {
    if (!config || typeof config.apiUrl !== 'string' || !config.apiUrl) {
      throw new OpenPartnerError('apiUrl is required', 400, 'config_missing');
    }
    this.apiUrl = config.apiUrl.replace(/\/+$/, '');
    this.cookieName = config.cookieName || '_cref';
    this.queryParam = config.queryParam || 'cref';
    this.storageKey = config.storageKey || 'openpartner:cref';
    this.onError =
      config.onError ||
      ((err) => {
        if (typeof console !== 'undefined') console.warn('[openpartner] identify failed', err);
      });
    this.cookieDomain = config.cookieDomain;
    this.cookieMaxAge = Math.round((config.cookieMaxAgeDays ?? 90) * 86400);
    this.persistCookie = config.persistCookie !== false;
    this.fetchImpl = config.fetch;
    this.capture();
  }

  /** Creates the client and captures the click id from the current page (call once per page load). */
  static init(config: OpenPartnerConfig): OpenPartner {
    return new OpenPartner(config);
  }

  /**
   * Looks for a click id again: the landing URL's `cref` first (a fresh click wins), then the
   * `_cref` cookie, then localStorage; stores what it found in both the cookie and
   * localStorage. `init()` calls it; call it yourself after a client-side navigation to a
   * URL that may carry a new `cref`. Returns the click id held afterwards.
   */
  capture(): string | null {
    const fromUrl = validToken(this.readQuery());
    const fromCookie = validToken(this.readCookie());
    const fromStorage = validToken(this.readStorage());
    const found = fromUrl || fromCookie || fromStorage;
    if (found) this.remember(found, fromCookie, fromStorage);
    this.cref = found;
    return found;
  }

  /** The click id held for this visitor, or null. */
  getCref(): string | null {
    if (!this.cref) {
      // Another tab (or the router's cookie) may have stored one since; the URL is only
      // read by capture(), so clear() sticks on a page whose URL still carries a cref.
      this.cref = validToken(this.readCookie()) || validToken(this.readStorage());
    }
    return this.cref;
  }

  /**
   * The referral token for this visitor, e.g. to pass as Stripe Checkout's
   * `client_reference_id`; null when the visitor did not come through a partner link.
   */
  getReferral(): string | null {
    return this.getCref();
  }

  /** Forgets the click id: removes it from localStorage and expires the first-party cookie. */
  clear(): void {
    this.cref = null;
    try {
      storage()?.removeItem(this.storageKey);
    } catch {
      /* storage blocked */
    }
    if (typeof document !== 'undefined') {
      document.cookie = `${this.cookieName}=; Path=/; Max-Age=0; SameSite=Lax`;
      if (this.cookieDomain) {
        document.cookie = `${this.cookieName}=; Path=/; Domain=${this.cookieDomain}; Max-Age=0; SameSite=Lax`;
      }
    }
  }

  /**
   * Ties the held click to your user: `POST {apiUrl}/attribution/identify` with
   * `{cref, userId, ts}` (a CORS request without credentials; your site's origin must be a
   * campaign destination's origin or on its deep-link domains). Call it on sign-up and on
   * sign-in. Resolves the API's answer, or `null` when there is no click to tie or the call
   * failed (failures go to `onError`).
   */
  async identify(userId: string): Promise<IdentifyResponse | null> {
    const cref = this.getCref();
    if (!cref) return null;
    try {
      if (typeof userId !== 'string' || !userId.trim()) {
        throw new OpenPartnerError('userId must be a non-empty string', 400, 'invalid_user_id');
      }
      const doFetch = this.fetchImpl || fetch;
      let res: Response;
      try {
        res = await doFetch(`${this.apiUrl}/attribution/identify`, {
          method: 'POST',
          mode: 'cors',
          credentials: 'omit',
          keepalive: true,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ cref, userId, ts: Date.now() }),
        });
      } catch (cause) {
        throw new OpenPartnerError('network error calling /attribution/identify', 0, 'network_error', undefined, {
          cause,
        });
      }
      const body = parseBody(await res.text());
      if (!res.ok) throw errorFromResponse(res, body);
      return body as IdentifyResponse;
    } catch (err) {
      try {
        this.onError(err);
      } catch {
        /* a throwing onError must not break the caller */
      }
      return null;
    }
  }

  private readQuery(): string | null {
    if (typeof location === 'undefined') return null;
    try {
      return new URLSearchParams(location.search).get(this.queryParam);
    } catch {
      return null;
    }
  }

  private readStorage(): string | null {
    try {
      return storage()?.getItem(this.storageKey) ?? null;
    } catch {
      return null;
    }
  }

  private readCookie(): string | null {
    if (typeof document === 'undefined' || !document.cookie) return null;
    for (const part of document.cookie.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      if (part.slice(0, eq).trim() === this.cookieName) {
        try {
          return decodeURIComponent(part.slice(eq + 1).trim());
        } catch {
          return null;
        }
      }
    }
    return null;
  }

  private remember(cref: string, inCookie: string | null, inStorage: string | null): void {
    if (inStorage !== cref) {
      try {
        storage()?.setItem(this.storageKey, cref);
      } catch {
        /* storage full or blocked: the cookie still holds it */
      }
    }
    if (this.persistCookie && inCookie !== cref && typeof document !== 'undefined') {
      const secure = typeof location !== 'undefined' && location.protocol === 'https:' ? '; Secure' : '';
      const domain = this.cookieDomain ? `; Domain=${this.cookieDomain}` : '';
      document.cookie = `${this.cookieName}=${encodeURIComponent(cref)}; Path=/; Max-Age=${this.cookieMaxAge}; SameSite=Lax${domain}${secure}`;
    }
  }
}

