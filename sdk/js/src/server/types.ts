/**
 * THE mapping from the generated OpenAPI types (src/generated/openapi.ts, produced by
 * `npm run gen:types`) to the names the SDK uses. Every request body, query and answer type
 * of the client is declared here, and only here.
 *
 * Each name takes the document's type when the document describes that operation, and a
 * hand-written loose type (from the API contract, docs/API.md) while it does not: the
 * `Documented<FromDoc, Fallback>` helper picks. So regenerating the file after the server
 * documents more routes tightens these types without touching the client.
 */
import type { components, paths } from '../generated/openapi.js';

// ---------------------------------------------------------------------------------------
// Helpers that read the generated `paths`.

type Json<C> = C extends { content: { 'application/json': infer T } } ? T : never;
type Responses<O> = O extends { responses: infer R } ? R : never;
/** The JSON body of an operation's 2xx answer(s). */
export type SuccessOf<O> = Json<Responses<O>[Extract<keyof Responses<O>, 200 | 201 | 202>]>;
/** The JSON request body of an operation. */
export type BodyOf<O> = O extends { requestBody?: infer B } ? Json<NonNullable<B>> : never;
/** The query parameters of an operation. */
export type QueryOf<O> = O extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;
/** The element type of a list operation's `data`. */
export type ItemOf<O> = SuccessOf<O> extends { data: ReadonlyArray<infer T> } ? T : never;
/** The document's type when it has one (not `never`, not `unknown`), else the fallback. */
export type Documented<T, Fallback> = [T] extends [never] ? Fallback : unknown extends T ? Fallback : T;

type Op<P extends keyof paths, M extends keyof paths[P]> = paths[P][M];
type Schemas = components['schemas'];
type Schema<K extends string, Fallback> = K extends keyof Schemas ? Schemas[K] : Fallback;

/** Unknown extra fields are allowed on every loose type. */
interface Loose {
  [extra: string]: unknown;
}

// ---------------------------------------------------------------------------------------
// Shared shapes.

/** Decimal money string scaled to the currency's minor unit (`"12.00"` USD, `"1200"` JPY). */
export type Money = string;
/** A money input: a JSON number or a decimal string. */
export type MoneyInput = string | number;
export type AttributionModel = 'last_click' | 'first_click' | 'linear' | 'position';

/** A page of a list: `data`, `nextCursor`, and the original's collection key (e.g. `partners`) as an alias. */
export type Page<T, Alias extends string = never> = {
  data: T[];
  nextCursor: string | null;
} & { [K in Alias]?: T[] };

export interface PageQuery {
  /** 1 to 500 (default 50). */
  limit?: number;
  /** The previous page's `nextCursor`. */
  cursor?: string;
}

export interface Acknowledged extends Loose {
  ok: boolean;
}

// ---------------------------------------------------------------------------------------
// Partners.

export type Partner = Schema<
  'PartnerView',
  Loose & {
    id: string;
    email: string;
    name: string;
    metadata: Record<string, unknown>;
    status: 'invited' | 'active' | 'revoked';
    activatedAt?: string | null;
    revokedAt?: string | null;
    revokeReason?: string | null;
    createdAt: string;
    updatedAt: string;
  }
>;
export type CreatePartnerInput = Documented<
  BodyOf<Op<'/partners', 'post'>>,
  { email: string; name: string; metadata?: Record<string, unknown> | null; sendInvite?: boolean | null }
>;
export type CreatedPartner = Documented<SuccessOf<Op<'/partners', 'post'>>, Partner & { invited: boolean }>;
export type PartnerListQuery = Documented<
  QueryOf<Op<'/partners', 'get'>>,
  PageQuery & { status?: 'invited' | 'active' | 'revoked'; email?: string }
>;
export type PartnerPage = Documented<SuccessOf<Op<'/partners', 'get'>>, Page<Partner, 'partners'>>;
export type GotPartner = Documented<SuccessOf<Op<'/partners/{id}', 'get'>>, Partner & { partner: Partner }>;
export type RevokePartnerInput = Documented<
  BodyOf<Op<'/partners/{id}/revoke', 'post'>>,
  { reason?: string | null; notify?: boolean | null }
>;
export type RevokedPartner = Documented<
  SuccessOf<Op<'/partners/{id}/revoke', 'post'>>,
  Loose & { ok: boolean; revokedAt: string; notified: boolean }
>;
export type InviteResult = Documented<SuccessOf<Op<'/partners/{id}/invite', 'post'>>, Acknowledged>;
export type ReinstateResult = Documented<SuccessOf<Op<'/partners/{id}/reinstate', 'post'>>, Acknowledged>;

// ---------------------------------------------------------------------------------------
// API keys.

export type ApiKeyScope =
  | 'events:write'
  | 'partners:write'
  | 'partners:read'
  | 'commissions:read'
  | 'links:write'
  | 'webhooks:write'
  | 'clicks:write'
  | (string & {});
export interface ApiKeyLoose extends Loose {
  id: string;
  prefix: string;
  label: string | null;
  scopes: ApiKeyScope[];
  role?: 'admin' | 'scoped' | 'partner' | (string & {});
  partnerId?: string | null;
  createdAt: string;
  revokedAt?: string | null;
}
export type ApiKey = Documented<ItemOf<Op<'/api-keys', 'get'>>, ApiKeyLoose>;
export type CreateApiKeyInput = Documented<
  BodyOf<Op<'/api-keys', 'post'>>,
  { label?: string | null; scopes?: ApiKeyScope[] | null }
>;
export type CreateScopedApiKeyInput = Documented<
  BodyOf<Op<'/api-keys/scoped', 'post'>>,
  { label?: string | null; scopes: ApiKeyScope[] | string }
>;
/** `key` is the plaintext, shown once (also as `plaintext`, the original's name). */
export type CreatedApiKey = Documented<
  SuccessOf<Op<'/api-keys', 'post'>>,
  ApiKeyLoose & { key: string; plaintext?: string }
>;
export type CreatePartnerApiKeyInput = Documented<
  BodyOf<Op<'/partners/{id}/api-keys', 'post'>>,
  { label?: string | null }
>;
export type ApiKeyListQuery = Documented<QueryOf<Op<'/api-keys', 'get'>>, PageQuery & { scope?: ApiKeyScope }>;
export type ApiKeyPage = Documented<SuccessOf<Op<'/api-keys', 'get'>>, Page<ApiKey, 'apiKeys'>>;

// ---------------------------------------------------------------------------------------
// Admins and sign-in.

export interface AdminLoose extends Loose {
  id: string;
  email: string;
  name: string | null;
  status: 'invited' | 'active' | 'revoked' | (string & {});
  activatedAt?: string | null;
  revokedAt?: string | null;
  createdAt: string;
  updatedAt?: string;
}
export type Admin = Documented<ItemOf<Op<'/admins', 'get'>>, AdminLoose>;
export type CreateAdminInput = Documented<
  BodyOf<Op<'/admins', 'post'>>,
  { email: string; name?: string | null; sendInvite?: boolean | null }
>;
export type CreatedAdmin = Documented<SuccessOf<Op<'/admins', 'post'>>, AdminLoose>;
export type AdminPage = Documented<SuccessOf<Op<'/admins', 'get'>>, Page<Admin, 'admins'>>;

export type MagicRequestInput = Documented<BodyOf<Op<'/auth/magic/request', 'post'>>, { email: string }>;
export type MagicVerifyInput = Documented<BodyOf<Op<'/auth/magic/verify', 'post'>>, { token: string }>;
export type MagicVerifyResult = Documented<
  SuccessOf<Op<'/auth/magic/verify', 'post'>>,
  Loose & { ok: boolean; role: 'admin' | 'partner'; principal: Loose }
>;
export type Me = Documented<
  SuccessOf<Op<'/auth/me', 'get'>>,
  Loose & { role: string; principal: Loose | null; partnerId?: string }
>;
export type Introspection = Documented<
  SuccessOf<Op<'/auth/introspect', 'get'>>,
  Loose & { role: 'admin' | 'scoped' | 'partner' | (string & {}); unrestricted?: boolean; scopes?: ApiKeyScope[]; partnerId?: string }
>;

// ---------------------------------------------------------------------------------------
// Campaigns (alias programs) and links.

/** One rule, or one sub-rule of a compound rule (`trigger`, `eventType`, `recurringMonths`). */
export type CommissionSubRule = {
  trigger?: 'every' | 'first' | 'subsequent';
  eventType?: string;
  recurring?: boolean;
  recurringMonths?: number;
  [extra: string]: unknown;
} & ({ type: 'percent'; value: MoneyInput } | { type: 'fixed'; value: MoneyInput; currency: string });
/** A single rule object, or a compound rule of 1 to 10 sub-rules. */
export type CommissionRule = CommissionSubRule | CommissionSubRule[];
export interface CampaignLoose extends Loose {
  id: string;
  programId?: string;
  name: string;
  destinationUrl: string;
  commissionRule: CommissionRule;
  attributionModel: AttributionModel;
  attributionWindowDays: number;
  holdbackDays: number;
  deepLinkAllowedDomains: string[];
  createdAt: string;
  updatedAt?: string;
}
export type Campaign = Documented<SuccessOf<Op<'/campaigns/{id}', 'get'>>, CampaignLoose>;
export type CreateCampaignInput = Documented<
  BodyOf<Op<'/campaigns', 'post'>>,
  {
    name: string;
    destinationUrl: string;
    commissionRule: CommissionRule;
    attributionModel?: AttributionModel;
    attributionWindowDays?: number;
    holdbackDays?: number;
    deepLinkAllowedDomains?: string[] | string;
  }
>;
export type UpdateCampaignInput = Documented<BodyOf<Op<'/campaigns/{id}', 'patch'>>, Partial<CreateCampaignInput>>;
export type CreatedCampaign = Documented<SuccessOf<Op<'/campaigns', 'post'>>, CampaignLoose>;
export type UpdatedCampaign = Documented<SuccessOf<Op<'/campaigns/{id}', 'patch'>>, CampaignLoose>;
export type CampaignListQuery = Documented<QueryOf<Op<'/campaigns', 'get'>>, PageQuery>;
export type CampaignPage = Documented<SuccessOf<Op<'/campaigns', 'get'>>, Page<Campaign, 'campaigns' | 'programs'>>;

export interface LinkLoose extends Loose {
  id: string;
  linkKey: string;
  partnerId: string;
  campaignId: string;
  programId?: string;
  destinationUrl: string | null;
  createdAt: string;
}
export type Link = Documented<ItemOf<Op<'/partners/{id}/links', 'get'>>, LinkLoose>;
export type CreateLinkInput = Documented<
  BodyOf<Op<'/partners/{id}/links', 'post'>>,
  { linkKey: string; campaignId?: string; programId?: string; destinationUrl?: string | null }
>;
export type CreatedLink = Documented<SuccessOf<Op<'/partners/{id}/links', 'post'>>, LinkLoose>;
export type LinkListQuery = Documented<
  QueryOf<Op<'/partners/{id}/links', 'get'>>,
  PageQuery & { campaignId?: string; programId?: string }
>;
export type LinkPage = Documented<SuccessOf<Op<'/partners/{id}/links', 'get'>>, Page<Link, 'links'>>;

export type RecordClickInput = Documented<
  BodyOf<Op<'/clicks', 'post'>>,
  { linkKey: string; ip?: string; userAgent?: string; referer?: string }
>;
export type RecordedClick = Documented<
  SuccessOf<Op<'/clicks', 'post'>>,
  Loose & { clickId: string; id: string; linkId?: string; partnerId: string; campaignId: string; fraudFlag?: string | null; ts?: string }
>;

// ---------------------------------------------------------------------------------------
// Attribution.

export type IdentifyInput = Documented<
  BodyOf<Op<'/attribution/identify', 'post'>>,
  { cref: string; userId: string; ts?: number | string }
>;
export type IdentifyResult = Documented<
  SuccessOf<Op<'/attribution/identify', 'post'>>,
  Loose & { ok: boolean; identityId: string | null; firstStitch: boolean; backfilledAttributions?: number }
>;
export type TrackEventInput = Documented<
  BodyOf<Op<'/attribution/events', 'post'>>,
  {
    userId: string;
    type: string;
    value?: MoneyInput;
    currency?: string;
    metadata?: Record<string, unknown>;
    ts?: string;
    /** Your id for the event (e.g. the invoice id): makes the call idempotent. */
    eventId?: string;
    /** The original's name for `eventId`. */
    externalEventId?: string;
  }
>;
export interface EventTouchLoose extends Loose {
  clickId: string;
  partnerId: string;
  campaignId?: string;
  weight: number;
  attributionId: string;
  commissionId?: string | null;
  amount?: Money;
  currency?: string;
}
export type TrackEventResult = Documented<
  SuccessOf<Op<'/attribution/events', 'post'>>,
  Loose & {
    ok: boolean;
    id: string;
    eventId: string;
    attribution: {
      status: 'attributed' | 'no_identity' | 'no_click' | 'outside_window' | 'already_attributed' | (string & {});
      model: AttributionModel | null;
      touches: EventTouchLoose[];
    };
    refund?: Loose & { refundOf: string; amount?: Money; reversed: Commission[]; adjustments: Commission[] };
  }
>;
/** A refund (or chargeback) of an earlier event: sent as an event of type `refund` with `metadata.refundOf`. */
export interface RefundInput {
  userId: string;
  /** The `eventId` of the event being refunded. */
  refundOf: string;
  /** Omit (or give the full value) to refund everything; a smaller value refunds that fraction. */
  value?: MoneyInput;
  currency?: string;
  /** Your id for the refund itself (makes it idempotent). */
  eventId?: string;
  /** `refund` (default) or `chargeback`. */
  type?: 'refund' | 'chargeback';
  metadata?: Record<string, unknown>;
  ts?: string;
}
export type RederiveInput = Documented<
  BodyOf<Op<'/attribution/rederive', 'post'>>,
  { campaignId?: string; programId?: string; from?: string; to?: string }
>;
export type RederiveResult = Documented<
  SuccessOf<Op<'/attribution/rederive', 'post'>>,
  Loose & { ok: boolean; events: number; reversed: number; created: number; skipped: number }
>;

// ---------------------------------------------------------------------------------------
// Commissions and payouts.

export interface CommissionLoose extends Loose {
  id: string;
  attributionId: string | null;
  eventId: string;
  partnerId: string;
  campaignId: string;
  programId?: string;
  amount: Money;
  currency: string;
  status: 'accrued' | 'approved' | 'paid' | 'reversed';
  accruedAt: string;
  approvedAt: string | null;
  paidAt: string | null;
  reversedAt: string | null;
  holdbackDays: number;
  matureAt: string;
  payoutId: string | null;
  refundOf?: string | null;
  adjustsCommissionId?: string | null;
  reverseReason?: string | null;
}
export type Commission = Documented<ItemOf<Op<'/commissions', 'get'>>, CommissionLoose>;
export type CommissionListQuery = Documented<
  QueryOf<Op<'/commissions', 'get'>>,
  PageQuery & {
    status?: 'accrued' | 'approved' | 'paid' | 'reversed';
    partnerId?: string;
    campaignId?: string;
    programId?: string;
    /** ISO 8601; on `accruedAt`. */
    from?: string;
    to?: string;
  }
>;
export type CommissionPage = Documented<SuccessOf<Op<'/commissions', 'get'>>, Page<Commission, 'commissions'>>;
export type CommissionResult = Documented<
  SuccessOf<Op<'/commissions/{id}/approve', 'post'>>,
  Loose & { commission: Commission }
>;
export type GotCommission = Documented<SuccessOf<Op<'/commissions/{id}', 'get'>>, Loose & { commission: Commission }>;
export type ReverseCommissionInput = Documented<
  BodyOf<Op<'/commissions/{id}/reverse', 'post'>>,
  { reason?: string }
>;
export type BulkApproveInput = Documented<BodyOf<Op<'/commissions/approve', 'post'>>, { ids: string[] }>;
export type BulkReverseInput = Documented<BodyOf<Op<'/commissions/reverse', 'post'>>, { ids: string[]; reason?: string }>;
export type BulkCommissionResult = Documented<
  SuccessOf<Op<'/commissions/approve', 'post'>>,
  Loose & { ok: boolean; commissions: Commission[] }
>;

export interface PayoutLoose extends Loose {
  id: string;
  payoutId: string;
  runId?: string;
  partnerId: string;
  amount: Money;
  currency: string;
  method: 'manual' | (string & {});
  status: 'pending' | 'paid' | 'failed';
  commissionIds: string[];
  createdAt: string;
  paidAt?: string | null;
}
export type Payout = Documented<ItemOf<Op<'/payouts', 'get'>>, PayoutLoose>;
export type RunPayoutsInput = Documented<
  BodyOf<Op<'/payouts/run', 'post'>>,
  { /** Minimum payout per currency, e.g. `{"USD": "50.00"}`. */ minimums?: Record<string, MoneyInput>; partnerId?: string }
>;
export type PayoutRun = Documented<
  SuccessOf<Op<'/payouts/run', 'post'>>,
  Loose & { ok?: boolean; runId: string; mode: 'manual' | (string & {}); payouts: Payout[] }
>;
export type PayoutListQuery = Documented<
  QueryOf<Op<'/payouts', 'get'>>,
  PageQuery & { status?: 'pending' | 'paid' | 'failed'; partnerId?: string }
>;
export type PayoutPage = Documented<SuccessOf<Op<'/payouts', 'get'>>, Page<Payout, 'payouts'>>;
export type GotPayout = Documented<
  SuccessOf<Op<'/payouts/{id}', 'get'>>,
  Loose & { payout: Payout; commissions: Commission[] }
>;
export type PayoutResult = Documented<SuccessOf<Op<'/payouts/{id}/mark-paid', 'post'>>, Loose & { payout: Payout }>;

// ---------------------------------------------------------------------------------------
// Webhooks.

export type WebhookEventType =
  | 'attribution.created'
  | 'commission.accrued'
  | 'commission.approved'
  | 'commission.paid'
  | 'commission.reversed'
  | 'partner.created'
  | 'partner.activated'
  | 'partner.revoked'
  | 'payout.created'
  | 'partnership.approved'
  | 'webhook.test'
  | '*'
  | (string & {});
export interface WebhookEndpointLoose extends Loose {
  id: string;
  url: string;
  events: WebhookEventType[];
  label: string | null;
  active: boolean;
  disabledReason?: string | null;
  failingSince?: string | null;
  createdAt: string;
  updatedAt: string;
}
export type WebhookEndpoint = Documented<ItemOf<Op<'/webhooks', 'get'>>, WebhookEndpointLoose>;
export type CreateWebhookInput = Documented<
  BodyOf<Op<'/webhooks', 'post'>>,
  { url: string; events: WebhookEventType[]; label?: string | null }
>;
/** `secret` (`whsec_...`) is shown once: keep it for `verifyWebhook`. */
export type CreatedWebhook = Documented<
  SuccessOf<Op<'/webhooks', 'post'>>,
  Loose & { endpoint: WebhookEndpoint; secret: string }
>;
export type UpdateWebhookInput = Documented<
  BodyOf<Op<'/webhooks/{id}', 'patch'>>,
  { url?: string; events?: WebhookEventType[]; label?: string | null; active?: boolean }
>;
export type WebhookResult = Documented<
  SuccessOf<Op<'/webhooks/{id}', 'patch'>>,
  Loose & { endpoint: WebhookEndpoint }
>;
export type GotWebhook = Documented<
  SuccessOf<Op<'/webhooks/{id}', 'get'>>,
  WebhookEndpointLoose & { endpoint: WebhookEndpoint }
>;
export type DeletedWebhook = Documented<SuccessOf<Op<'/webhooks/{id}', 'delete'>>, Loose>;
export type RotatedWebhookSecret = Documented<
  SuccessOf<Op<'/webhooks/{id}/rotate-secret', 'post'>>,
  Loose & { endpoint: WebhookEndpoint; secret: string; previousSecretExpiresAt: string }
>;
export type WebhookListQuery = Documented<QueryOf<Op<'/webhooks', 'get'>>, PageQuery>;
export type WebhookPage = Documented<SuccessOf<Op<'/webhooks', 'get'>>, Page<WebhookEndpoint, 'webhooks' | 'endpoints'>>;
export interface WebhookDeliveryLoose extends Loose {
  id: string;
  endpointId: string;
  eventId: string;
  eventType: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  httpStatus: number | null;
  error: string | null;
  lastAttemptAt: string | null;
  deliveredAt: string | null;
  nextAttemptAt: string | null;
  createdAt: string;
}
export type WebhookDelivery = Documented<ItemOf<Op<'/webhooks/{id}/deliveries', 'get'>>, WebhookDeliveryLoose>;
export type DeliveryListQuery = Documented<QueryOf<Op<'/webhooks/{id}/deliveries', 'get'>>, PageQuery>;
export type DeliveryPage = Documented<SuccessOf<Op<'/webhooks/{id}/deliveries', 'get'>>, Page<WebhookDelivery, 'deliveries'>>;
export type DeliveryResult = Documented<
  SuccessOf<Op<'/webhooks/{id}/deliveries/{deliveryId}/retry', 'post'>>,
  Loose & { delivery: WebhookDelivery }
>;
/** The envelope every webhook carries. */
export interface WebhookEnvelope<D = Record<string, unknown>> {
  id: string;
  event: WebhookEventType;
  created: string;
  data: D;
}
export type TestFireResult = Documented<
  SuccessOf<Op<'/webhooks/{id}/test', 'post'>>,
  Loose & { delivery: WebhookDelivery; event: WebhookEnvelope }
>;

// ---------------------------------------------------------------------------------------
// Development.

export type Mailbox = Documented<
  SuccessOf<Op<'/dev/mailbox', 'get'>>,
  Page<Loose & { id: string; to: string; subject: string; body: string; metadata: Loose; createdAt: string }, 'mails'>
>;
