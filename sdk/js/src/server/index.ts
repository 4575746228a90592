/**
 * `@openpartner/sdk/server` — for your backend (Node 20+, Bun, Deno, workers with fetch):
 *
 *   import { createClient } from '@openpartner/sdk/server';
 *   const op = createClient({ baseUrl: process.env.OPENPARTNER_API_URL!, apiKey: process.env.OPENPARTNER_API_KEY! });
 *   await op.trackEvent({ userId: user.id, type: 'invoice_paid', value: '49.00', eventId: invoice.id });
 */
export { createClient, collect, routerUrlFor } from './client.js';
export type { OpenPartnerClient, CampaignResource } from './client.js';
export { Transport, parseRetryAfter, newIdempotencyKey, buildUrl } from './http.js';
export type { ApiResponse, ClientOptions, Query, QueryValue, RequestOptions } from './http.js';
export { OpenPartnerServer } from './legacy.js';
export type { OpenPartnerServerConfig, TrackEventParams } from './legacy.js';
export {
  verifyWebhook,
  verifyWebhookAsync,
  unwrapWebhook,
  WebhookVerificationError,
} from './webhooks.js';
export type {
  VerifyWebhookOptions,
  WebhookBody,
  WebhookHeaders,
  WebhookVerificationCode,
} from './webhooks.js';
export { OpenPartnerError, VERSION } from '../shared.js';
export type {
  EventAttribution,
  EventResponse,
  EventTouch,
  IdentifyResponse,
  OpenPartnerErrorExtras,
} from '../shared.js';
export type * from './types.js';
export type { components, paths, operations } from '../generated/openapi.js';
