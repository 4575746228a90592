/**
 * What both entry points share: the error class and the attribution answer types.
 * Nothing here touches `window`, `document` or Node built-ins.
 */

declare const __SDK_VERSION__: string;
/** The SDK's version (from package.json, set at build time). */
export const VERSION: string = typeof __SDK_VERSION__ === 'string' ? __SDK_VERSION__ : '0.0.0-dev';

/** Marks our errors so `instanceof` works across the browser and server bundles. */
const BRAND = Symbol.for('openpartner.sdk.error');

export interface OpenPartnerErrorExtras {
  /** The parsed response body (or its text when it was not JSON). */
  body?: unknown;
  /** The body field at fault, when the API names one (`400 invalid_body`). */
  field?: string;
  /** The response's `X-Request-Id` (quote it when asking for support). */
  requestId?: string;
  /** The response headers. */
  headers?: Headers;
  /** The underlying error of a network failure or timeout. */
  cause?: unknown;
}

/**
 * Every failure of an API call. `status` is the HTTP status (0 for a network failure or
 * timeout), `code` the API's machine-readable `error` field (`not_found`, `email_taken`,
 * `invalid_body`, ...; `network_error` / `timeout` / `aborted` for transport failures),
 * `detail` the API's `detail` field (or, when it has none, the whole body, as the original
 * SDK did), `body` the whole parsed body, `field` the body field at fault if any.
 */
export class OpenPartnerError extends Error {
  readonly status: number;
  readonly code?: string;
  readonly detail?: unknown;
  readonly body?: unknown;
  readonly field?: string;
  readonly requestId?: string;
  readonly headers?: Headers;

  constructor(
    message: string,
    status: number,
    code?: string,
    detail?: unknown,
    extras: OpenPartnerErrorExtras = {},
  ) {
    super(message, extras.cause === undefined ? undefined : { cause: extras.cause });
    this.name = 'OpenPartnerError';
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.body = extras.body;
    this.field = extras.field;
    this.requestId = extras.requestId;
    this.headers = extras.headers;
    Object.defineProperty(this, BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

/** Parses a response body: JSON when it is JSON, the text otherwise, undefined when empty. */
export function parseBody(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Builds the error for a non-2xx answer. */
export function errorFromResponse(res: Response, body: unknown): OpenPartnerError {
  const obj = body && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  const code = typeof obj.error === 'string' ? obj.error : undefined;
  const detail = obj.detail !== undefined ? obj.detail : body;
  const text =
    typeof obj.detail === 'string' ? obj.detail : typeof body === 'string' ? body.slice(0, 200) : '';
  const message = `${res.status} ${code ?? res.statusText ?? 'error'}${text ? `: ${text}` : ''}`;
  return new OpenPartnerError(message, res.status, code, detail, {
    body,
    field: typeof obj.field === 'string' ? obj.field : undefined,
    requestId: res.headers.get('x-request-id') ?? undefined,
    headers: res.headers,
  });
}

/** `POST /attribution/identify`'s answer. */
export interface IdentifyResponse {
  ok: boolean;
  identityId: string | null;
  firstStitch: boolean;
  backfilledAttributions?: number;
}

/** One attributed click of an event. */
export interface EventTouch {
  clickId: string;
  partnerId: string;
  campaignId?: string;
  weight: number;
  attributionId: string;
  commissionId?: string | null;
  amount?: string;
  currency?: string;
  [extra: string]: unknown;
}

export interface EventAttribution {
  status:
    | 'attributed'
    | 'no_identity'
    | 'no_click'
    | 'outside_window'
    | 'already_attributed'
    | (string & {});
  model?: 'last_click' | 'first_click' | 'linear' | 'position' | null;
  touches?: EventTouch[];
}

/** `POST /attribution/events`'s answer. */
export interface EventResponse {
  ok: boolean;
  /** The server's id of the event (`evt_...`). */
  id?: string;
  /** Your `eventId`, or `id` when you gave none. */
  eventId: string;
  attribution: EventAttribution;
  /** Present for `refund` / `chargeback` events. */
  refund?: {
    refundOf: string;
    amount?: string;
    reversed: unknown[];
    adjustments: unknown[];
    [extra: string]: unknown;
  };
  [extra: string]: unknown;
}
