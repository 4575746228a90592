/**
 * `new OpenPartnerServer({apiUrl, apiKey})`: the original SDK's server class, kept for its
 * users (same constructor, same methods, same answers), now on the retrying, idempotent
 * client. New code can use `createClient` (or this class's `client`).
 */
import { OpenPartnerError } from '../shared.js';
import type { EventResponse, IdentifyResponse } from '../shared.js';
import { createClient } from './client.js';
import type { OpenPartnerClient } from './client.js';
import type { RequestOptions } from './http.js';
import type { RefundInput } from './types.js';

export interface OpenPartnerServerConfig {
  /** The tenant API base URL (`https://<host>/api/t/<slug>` or `https://<host>/api`). */
  apiUrl: string;
  /** An admin key, or a scoped key with `events:write`. Never expose it to a browser. */
  apiKey: string;
  /** A `fetch` to use instead of the global one. */
  fetch?: typeof fetch;
  /** Retries after the first attempt (default 2). */
  maxRetries?: number;
}

export interface TrackEventParams {
  /** Your user's id, as the browser SDK passed it to `identify()`. */
  userId: string;
  /** `signup`, `trial_started`, `invoice_paid`, ...; `refund` / `chargeback` reverse an earlier event. */
  type: string;
  /** The event's value (number or decimal string), for percent commissions. */
  value?: number | string;
  /** ISO 4217 (default USD). */
  currency?: string;
  metadata?: Record<string, unknown>;
  /** Event time, ISO 8601 (default now). */
  ts?: string;
  /** Your id for the event (e.g. the invoice id): sending it again creates nothing new. */
  eventId?: string;
  /** The original's name for `eventId`. */
  externalEventId?: string;
}

export class OpenPartnerServer {
  /** The full typed client underneath. */
  readonly client: OpenPartnerClient;

  constructor(config: OpenPartnerServerConfig) {
    if (!config?.apiUrl) throw new OpenPartnerError('apiUrl is required', 400, 'config_missing');
    if (!config?.apiKey) throw new OpenPartnerError('apiKey is required', 400, 'config_missing');
    this.client = createClient({
      baseUrl: config.apiUrl,
      apiKey: config.apiKey,
      fetch: config.fetch,
      maxRetries: config.maxRetries,
    });
  }

  /** Records a conversion; answers how it was attributed and the commissions it created. */
  trackEvent(params: TrackEventParams, opts?: RequestOptions): Promise<EventResponse> {
    return this.client.attribution.trackEvent(params, opts) as Promise<EventResponse>;
  }

  /** Ties a click (`cref`, e.g. sent up by your signup form) to your user id from the backend. */
  identify(params: { cref: string; userId: string; ts?: number }, opts?: RequestOptions): Promise<IdentifyResponse> {
    return this.client.attribution.identify(params, opts) as Promise<IdentifyResponse>;
  }

  /**
   * Refunds (or charges back) an earlier event: `{userId, refundOf: <its eventId>, value?}`.
   * Without `value` (or with the full value) all of its commissions are reversed, or clawed
   * back when already paid; a smaller value reverses that fraction.
   */
  refund(params: RefundInput, opts?: RequestOptions): Promise<EventResponse> {
    return this.client.attribution.refund(params, opts) as Promise<EventResponse>;
  }
}
