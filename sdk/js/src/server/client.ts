/**
 * `createClient({baseUrl, apiKey})`: a typed client for every route of the API
 * (tenant-worker/src/routes.rs), grouped by resource, plus the generic `request`.
 * Request and answer types come from ./types.ts (the one place that maps the generated
 * OpenAPI types to these names).
 */
import { OpenPartnerError } from '../shared.js';
import { Transport } from './http.js';
import type { ApiResponse, ClientOptions, Query, RequestOptions } from './http.js';
import type * as T from './types.js';

const seg = (v: string): string => {
  if (typeof v !== 'string' || !v) throw new OpenPartnerError('an id is required', 400, 'invalid_argument');
  return encodeURIComponent(v);
};

function asQuery(q: unknown): Query | undefined {
  return q ? (q as Query) : undefined;
}

/** Collects an async iterable into an array (at most `max` items). */
export async function collect<I>(items: AsyncIterable<I>, max = Infinity): Promise<I[]> {
  const out: I[] = [];
  if (max <= 0) return out;
  for await (const item of items) {
    out.push(item);
    if (out.length >= max) break;
  }
  return out;
}

export interface OpenPartnerClient {
  /** The tenant API base URL the client was made with (without a trailing slash). */
  readonly baseUrl: string;
  /**
   * Any route: `request('GET', '/partners', undefined, {query: {limit: 10}})`. Resolves the
   * parsed JSON answer; rejects with `OpenPartnerError` on a non-2xx answer.
   */
  request<R = unknown>(method: string, path: string, body?: unknown, opts?: RequestOptions): Promise<R>;
  /** Like `request`, with the status, headers and whether the answer was an idempotent replay. */
  requestWithResponse<R = unknown>(
    method: string,
    path: string,
    body?: unknown,
    opts?: RequestOptions,
  ): Promise<ApiResponse<R>>;
  /** Every item of a cursor-paginated list, page after page (follows `nextCursor`, reads `data`). */
  paginate<I = unknown>(path: string, query?: Query, opts?: RequestOptions): AsyncIterableIterator<I>;
  /** Every page of a cursor-paginated list. */
  pages<P extends { data: unknown[]; nextCursor: string | null } = T.Page<unknown>>(
    path: string,
    query?: Query,
    opts?: RequestOptions,
  ): AsyncIterableIterator<P>;
  /** The click router's URL for a link key (`/r/<slug>/<linkKey>` hosted, `/r/<linkKey>` self-hosted). */
  routerUrl(linkKey: string): string;
  /** The API's OpenAPI 3.1 description of this tenant. */
  openapi(opts?: RequestOptions): Promise<Record<string, unknown>>;

  /** Shortcut for `attribution.trackEvent`. */
  trackEvent(body: T.TrackEventInput, opts?: RequestOptions): Promise<T.TrackEventResult>;
  /** Shortcut for `attribution.identify`. */
  identify(body: T.IdentifyInput, opts?: RequestOptions): Promise<T.IdentifyResult>;
  /** Shortcut for `attribution.refund`. */
  refund(input: T.RefundInput, opts?: RequestOptions): Promise<T.TrackEventResult>;

  partners: {
    create(body: T.CreatePartnerInput, opts?: RequestOptions): Promise<T.CreatedPartner>;
    list(query?: T.PartnerListQuery, opts?: RequestOptions): Promise<T.PartnerPage>;
    iterate(query?: T.PartnerListQuery, opts?: RequestOptions): AsyncIterableIterator<T.Partner>;
    get(id: string, opts?: RequestOptions): Promise<T.GotPartner>;
    invite(id: string, opts?: RequestOptions): Promise<T.InviteResult>;
    revoke(id: string, body?: T.RevokePartnerInput, opts?: RequestOptions): Promise<T.RevokedPartner>;
    reinstate(id: string, opts?: RequestOptions): Promise<T.ReinstateResult>;
    createApiKey(id: string, body?: T.CreatePartnerApiKeyInput, opts?: RequestOptions): Promise<T.CreatedApiKey>;
    listApiKeys(id: string, query?: T.PageQuery, opts?: RequestOptions): Promise<T.ApiKeyPage>;
    /** Same as `links.create(partnerId, ...)`. */
    createLink(id: string, body: T.CreateLinkInput, opts?: RequestOptions): Promise<T.CreatedLink>;
    /** Same as `links.list(partnerId, ...)`. */
    listLinks(id: string, query?: T.LinkListQuery, opts?: RequestOptions): Promise<T.LinkPage>;
    /** Same as `commissions.listForPartner(partnerId, ...)`. */
    listCommissions(id: string, query?: T.CommissionListQuery, opts?: RequestOptions): Promise<T.CommissionPage>;
  };
  campaigns: CampaignResource;
  /** The original's later name for campaigns: `/programs` routes, same shapes. */
  programs: CampaignResource;
  links: {
    create(partnerId: string, body: T.CreateLinkInput, opts?: RequestOptions): Promise<T.CreatedLink>;
    list(partnerId: string, query?: T.LinkListQuery, opts?: RequestOptions): Promise<T.LinkPage>;
    iterate(partnerId: string, query?: T.LinkListQuery, opts?: RequestOptions): AsyncIterableIterator<T.Link>;
    /** The click router's URL for a link key. */
    url(linkKey: string): string;
  };
  clicks: {
    /** `POST /clicks`: record a click server-side (for merchants that route clicks themselves). */
    record(body: T.RecordClickInput, opts?: RequestOptions): Promise<T.RecordedClick>;
  };
  attribution: {
    /** `POST /attribution/events`: a conversion; answers the attribution and its commissions. */
    trackEvent(body: T.TrackEventInput, opts?: RequestOptions): Promise<T.TrackEventResult>;
    /** `POST /attribution/identify`: ties a click (`cref`) to your user id. */
    identify(body: T.IdentifyInput, opts?: RequestOptions): Promise<T.IdentifyResult>;
    /** A `refund` (or `chargeback`) event for an earlier event: reverses or claws back its commissions. */
    refund(input: T.RefundInput, opts?: RequestOptions): Promise<T.TrackEventResult>;
    /** `POST /attribution/rederive`: re-run attribution after a model change. */
    rederive(body?: T.RederiveInput, opts?: RequestOptions): Promise<T.RederiveResult>;
  };
  commissions: {
    list(query?: T.CommissionListQuery, opts?: RequestOptions): Promise<T.CommissionPage>;
    iterate(query?: T.CommissionListQuery, opts?: RequestOptions): AsyncIterableIterator<T.Commission>;
    listForPartner(partnerId: string, query?: T.CommissionListQuery, opts?: RequestOptions): Promise<T.CommissionPage>;
    iterateForPartner(
      partnerId: string,
      query?: T.CommissionListQuery,
      opts?: RequestOptions,
    ): AsyncIterableIterator<T.Commission>;
    get(id: string, opts?: RequestOptions): Promise<T.GotCommission>;
    approve(id: string, opts?: RequestOptions): Promise<T.CommissionResult>;
    reverse(id: string, body?: T.ReverseCommissionInput, opts?: RequestOptions): Promise<T.CommissionResult>;
    /** `POST /commissions/approve {ids}`: up to 100, all or nothing. */
    approveMany(body: T.BulkApproveInput, opts?: RequestOptions): Promise<T.BulkCommissionResult>;
    /** `POST /commissions/reverse {ids, reason?}`: up to 100, all or nothing. */
    reverseMany(body: T.BulkReverseInput, opts?: RequestOptions): Promise<T.BulkCommissionResult>;
  };
  payouts: {
    /** `POST /payouts/run`: approved commissions → pending payouts per partner and currency. */
    run(body?: T.RunPayoutsInput, opts?: RequestOptions): Promise<T.PayoutRun>;
    list(query?: T.PayoutListQuery, opts?: RequestOptions): Promise<T.PayoutPage>;
    iterate(query?: T.PayoutListQuery, opts?: RequestOptions): AsyncIterableIterator<T.Payout>;
    get(id: string, opts?: RequestOptions): Promise<T.GotPayout>;
    markPaid(id: string, opts?: RequestOptions): Promise<T.PayoutResult>;
  };
  webhooks: {
    create(body: T.CreateWebhookInput, opts?: RequestOptions): Promise<T.CreatedWebhook>;
    list(query?: T.WebhookListQuery, opts?: RequestOptions): Promise<T.WebhookPage>;
    iterate(query?: T.WebhookListQuery, opts?: RequestOptions): AsyncIterableIterator<T.WebhookEndpoint>;
    get(id: string, opts?: RequestOptions): Promise<T.GotWebhook>;
    update(id: string, body: T.UpdateWebhookInput, opts?: RequestOptions): Promise<T.WebhookResult>;
    /** Deactivates the endpoint; `{hard: true}` deletes it. */
    delete(id: string, params?: { hard?: boolean }, opts?: RequestOptions): Promise<T.DeletedWebhook>;
    /** New secret; the previous one keeps signing alongside it for 24 hours. */
    rotateSecret(id: string, opts?: RequestOptions): Promise<T.RotatedWebhookSecret>;
    deliveries(id: string, query?: T.DeliveryListQuery, opts?: RequestOptions): Promise<T.DeliveryPage>;
    iterateDeliveries(id: string, query?: T.DeliveryListQuery, opts?: RequestOptions): AsyncIterableIterator<T.WebhookDelivery>;
    retryDelivery(id: string, deliveryId: string, opts?: RequestOptions): Promise<T.DeliveryResult>;
    /** Sends a sample envelope of type `event` (default `webhook.test`) at once. */
    test(id: string, params?: { event?: T.WebhookEventType }, opts?: RequestOptions): Promise<T.TestFireResult>;
  };
  apiKeys: {
    /** No `scopes` → an admin key. The answer's `key` is the plaintext, shown once. */
    create(body?: T.CreateApiKeyInput, opts?: RequestOptions): Promise<T.CreatedApiKey>;
    /** The original's `POST /api-keys/scoped` (scopes required). */
    createScoped(body: T.CreateScopedApiKeyInput, opts?: RequestOptions): Promise<T.CreatedApiKey>;
    list(query?: T.ApiKeyListQuery, opts?: RequestOptions): Promise<T.ApiKeyPage>;
    iterate(query?: T.ApiKeyListQuery, opts?: RequestOptions): AsyncIterableIterator<T.ApiKey>;
    revoke(id: string, opts?: RequestOptions): Promise<unknown>;
  };
  admins: {
    create(body: T.CreateAdminInput, opts?: RequestOptions): Promise<T.CreatedAdmin>;
    list(query?: T.PageQuery, opts?: RequestOptions): Promise<T.AdminPage>;
    iterate(query?: T.PageQuery, opts?: RequestOptions): AsyncIterableIterator<T.Admin>;
    revoke(id: string, opts?: RequestOptions): Promise<unknown>;
  };
  auth: {
    /** Always `{ok: true}`; mails a sign-in link to a known address. */
    requestMagicLink(body: T.MagicRequestInput, opts?: RequestOptions): Promise<T.Acknowledged>;
    /** Exchanges a magic-link token for a session (the `op_session` cookie is in the answer's headers). */
    verifyMagicLink(body: T.MagicVerifyInput, opts?: RequestOptions): Promise<T.MagicVerifyResult>;
    me(opts?: RequestOptions): Promise<T.Me>;
    /** What the client's key may do: `{role: "admin", unrestricted: true}`, `{role: "scoped", scopes}`, ... */
    introspect(opts?: RequestOptions): Promise<T.Introspection>;
    signout(opts?: RequestOptions): Promise<unknown>;
  };
  dev: {
    /** `GET /dev/mailbox` (development stacks without SMTP). */
    mailbox(query?: T.PageQuery, opts?: RequestOptions): Promise<T.Mailbox>;
  };
}

export interface CampaignResource {
  create(body: T.CreateCampaignInput, opts?: RequestOptions): Promise<T.CreatedCampaign>;
  list(query?: T.CampaignListQuery, opts?: RequestOptions): Promise<T.CampaignPage>;
  iterate(query?: T.CampaignListQuery, opts?: RequestOptions): AsyncIterableIterator<T.Campaign>;
  get(id: string, opts?: RequestOptions): Promise<T.Campaign>;
  update(id: string, body: T.UpdateCampaignInput, opts?: RequestOptions): Promise<T.UpdatedCampaign>;
}

export type { ClientOptions, RequestOptions, ApiResponse, Query };

/** Derives the click router's URL from the tenant API base URL. */
export function routerUrlFor(baseUrl: string, linkKey: string): string {
  const u = new URL(baseUrl.replace(/\/+$/, ''));
  const hosted = u.pathname.match(/^(.*)\/api\/t\/([^/]+)$/);
  const single = u.pathname.match(/^(.*)\/api$/);
  const key = encodeURIComponent(linkKey);
  if (hosted) return `${u.origin}${hosted[1]}/r/${hosted[2]}/${key}`;
  if (single) return `${u.origin}${single[1]}/r/${key}`;
  throw new OpenPartnerError(
    `cannot derive the router URL from ${baseUrl} (expected .../api/t/<slug> or .../api)`,
    400,
    'invalid_argument',
  );
}

export function createClient(options: ClientOptions): OpenPartnerClient {
  const http = new Transport(options);
  const request = async <R>(method: string, path: string, body?: unknown, opts?: RequestOptions): Promise<R> =>
    (await http.send<R>(method, path, body, opts)).data;

  async function* pages<P extends { data: unknown[]; nextCursor: string | null }>(
    path: string,
    query?: Query,
    opts?: RequestOptions,
  ): AsyncIterableIterator<P> {
    let cursor = (query?.cursor as string | undefined) ?? undefined;
    const seen = new Set<string>();
    for (;;) {
      const page = await request<P>('GET', path, undefined, { ...opts, query: { ...query, cursor } });
      if (!page || !Array.isArray(page.data)) {
        throw new OpenPartnerError(`GET ${path} did not answer a page ({data, nextCursor})`, 0, 'invalid_response', undefined, {
          body: page,
        });
      }
      yield page;
      const next = page.nextCursor;
      if (!next) return;
      if (seen.has(next)) {
        throw new OpenPartnerError(`GET ${path} returned the same nextCursor twice`, 0, 'invalid_response');
      }
      seen.add(next);
      cursor = next;
    }
  }
  async function* paginate<I>(path: string, query?: Query, opts?: RequestOptions): AsyncIterableIterator<I> {
    for await (const page of pages<T.Page<I>>(path, query, opts)) yield* page.data;
  }

  const campaignResource = (base: '/campaigns' | '/programs'): CampaignResource => ({
    create: (body, opts) => request('POST', base, body, opts),
    list: (query, opts) => request('GET', base, undefined, { ...opts, query: asQuery(query) }),
    iterate: (query, opts) => paginate(base, asQuery(query), opts),
    get: (id, opts) => request('GET', `${base}/${seg(id)}`, undefined, opts),
    update: (id, body, opts) => request('PATCH', `${base}/${seg(id)}`, body, opts),
  });

  const trackEvent = (body: T.TrackEventInput, opts?: RequestOptions) =>
    request<T.TrackEventResult>('POST', '/attribution/events', body, opts);
  const identify = (body: T.IdentifyInput, opts?: RequestOptions) =>
    request<T.IdentifyResult>('POST', '/attribution/identify', body, opts);
  const refund = (input: T.RefundInput, opts?: RequestOptions) => {
    if (!input || !input.refundOf) {
      throw new OpenPartnerError('refund needs refundOf (the eventId being refunded)', 400, 'invalid_argument');
    }
    const { refundOf, type, metadata, ...rest } = input;
    return trackEvent({ ...rest, type: type ?? 'refund', metadata: { ...(metadata ?? {}), refundOf } } as T.TrackEventInput, opts);
  };
  const links: OpenPartnerClient['links'] = {
    create: (partnerId, body, opts) => request('POST', `/partners/${seg(partnerId)}/links`, body, opts),
    list: (partnerId, query, opts) =>
      request('GET', `/partners/${seg(partnerId)}/links`, undefined, { ...opts, query: asQuery(query) }),
    iterate: (partnerId, query, opts) => paginate(`/partners/${seg(partnerId)}/links`, asQuery(query), opts),
    url: (linkKey) => routerUrlFor(http.baseUrl, linkKey),
  };
  const commissionsForPartner = (partnerId: string) => `/partners/${seg(partnerId)}/commissions`;

  const client: OpenPartnerClient = {
    baseUrl: http.baseUrl,
    request,
    requestWithResponse: (method, path, body, opts) => http.send(method, path, body, opts),
    paginate,
    pages,
    routerUrl: (linkKey) => routerUrlFor(http.baseUrl, linkKey),
    openapi: (opts) => request('GET', '/openapi.json', undefined, opts),
    trackEvent,
    identify,
    refund,
    partners: {
      create: (body, opts) => request('POST', '/partners', body, opts),
      list: (query, opts) => request('GET', '/partners', undefined, { ...opts, query: asQuery(query) }),
      iterate: (query, opts) => paginate('/partners', asQuery(query), opts),
      get: (id, opts) => request('GET', `/partners/${seg(id)}`, undefined, opts),
      invite: (id, opts) => request('POST', `/partners/${seg(id)}/invite`, undefined, opts),
      revoke: (id, body, opts) => request('POST', `/partners/${seg(id)}/revoke`, body ?? {}, opts),
      reinstate: (id, opts) => request('POST', `/partners/${seg(id)}/reinstate`, undefined, opts),
      createApiKey: (id, body, opts) => request('POST', `/partners/${seg(id)}/api-keys`, body ?? {}, opts),
      listApiKeys: (id, query, opts) =>
        request('GET', `/partners/${seg(id)}/api-keys`, undefined, { ...opts, query: asQuery(query) }),
      createLink: (id, body, opts) => links.create(id, body, opts),
      listLinks: (id, query, opts) => links.list(id, query, opts),
      listCommissions: (id, query, opts) =>
        request('GET', commissionsForPartner(id), undefined, { ...opts, query: asQuery(query) }),
    },
    campaigns: campaignResource('/campaigns'),
    programs: campaignResource('/programs'),
    links,
    clicks: {
      record: (body, opts) => request('POST', '/clicks', body, opts),
    },
    attribution: {
      trackEvent,
      identify,
      refund,
      rederive: (body, opts) => request('POST', '/attribution/rederive', body ?? {}, opts),
    },
    commissions: {
      list: (query, opts) => request('GET', '/commissions', undefined, { ...opts, query: asQuery(query) }),
      iterate: (query, opts) => paginate('/commissions', asQuery(query), opts),
      listForPartner: (partnerId, query, opts) =>
        request('GET', commissionsForPartner(partnerId), undefined, { ...opts, query: asQuery(query) }),
      iterateForPartner: (partnerId, query, opts) => paginate(commissionsForPartner(partnerId), asQuery(query), opts),
      get: (id, opts) => request('GET', `/commissions/${seg(id)}`, undefined, opts),
      approve: (id, opts) => request('POST', `/commissions/${seg(id)}/approve`, undefined, opts),
      reverse: (id, body, opts) => request('POST', `/commissions/${seg(id)}/reverse`, body ?? {}, opts),
      approveMany: (body, opts) => request('POST', '/commissions/approve', body, opts),
      reverseMany: (body, opts) => request('POST', '/commissions/reverse', body, opts),
    },
    payouts: {
      run: (body, opts) => request('POST', '/payouts/run', body ?? {}, opts),
      list: (query, opts) => request('GET', '/payouts', undefined, { ...opts, query: asQuery(query) }),
      iterate: (query, opts) => paginate('/payouts', asQuery(query), opts),
      get: (id, opts) => request('GET', `/payouts/${seg(id)}`, undefined, opts),
      markPaid: (id, opts) => request('POST', `/payouts/${seg(id)}/mark-paid`, undefined, opts),
    },
    webhooks: {
      create: (body, opts) => request('POST', '/webhooks', body, opts),
      list: (query, opts) => request('GET', '/webhooks', undefined, { ...opts, query: asQuery(query) }),
      iterate: (query, opts) => paginate('/webhooks', asQuery(query), opts),
      get: (id, opts) => request('GET', `/webhooks/${seg(id)}`, undefined, opts),
      update: (id, body, opts) => request('PATCH', `/webhooks/${seg(id)}`, body, opts),
      delete: (id, params, opts) =>
        request('DELETE', `/webhooks/${seg(id)}`, undefined, {
          ...opts,
          query: { ...opts?.query, hard: params?.hard ? '1' : undefined },
        }),
      rotateSecret: (id, opts) => request('POST', `/webhooks/${seg(id)}/rotate-secret`, undefined, opts),
      deliveries: (id, query, opts) =>
        request('GET', `/webhooks/${seg(id)}/deliveries`, undefined, { ...opts, query: asQuery(query) }),
      iterateDeliveries: (id, query, opts) => paginate(`/webhooks/${seg(id)}/deliveries`, asQuery(query), opts),
      retryDelivery: (id, deliveryId, opts) =>
        request('POST', `/webhooks/${seg(id)}/deliveries/${seg(deliveryId)}/retry`, undefined, opts),
      test: (id, params, opts) =>
        request('POST', `/webhooks/${seg(id)}/test`, undefined, {
          ...opts,
          query: { ...opts?.query, event: params?.event },
        }),
    },
    apiKeys: {
      create: (body, opts) => request('POST', '/api-keys', body ?? {}, opts),
      createScoped: (body, opts) => request('POST', '/api-keys/scoped', body, opts),
      list: (query, opts) => request('GET', '/api-keys', undefined, { ...opts, query: asQuery(query) }),
      iterate: (query, opts) => paginate('/api-keys', asQuery(query), opts),
      revoke: (id, opts) => request('DELETE', `/api-keys/${seg(id)}`, undefined, opts),
    },
    admins: {
      create: (body, opts) => request('POST', '/admins', body, opts),
      list: (query, opts) => request('GET', '/admins', undefined, { ...opts, query: asQuery(query) }),
      iterate: (query, opts) => paginate('/admins', asQuery(query), opts),
      revoke: (id, opts) => request('POST', `/admins/${seg(id)}/revoke`, undefined, opts),
    },
    auth: {
      requestMagicLink: (body, opts) => request('POST', '/auth/magic/request', body, opts),
      verifyMagicLink: (body, opts) => request('POST', '/auth/magic/verify', body, opts),
      me: (opts) => request('GET', '/auth/me', undefined, opts),
      introspect: (opts) => request('GET', '/auth/introspect', undefined, opts),
      signout: (opts) => request('POST', '/auth/signout', undefined, opts),
    },
    dev: {
      mailbox: (query, opts) => request('GET', '/dev/mailbox', undefined, { ...opts, query: asQuery(query) }),
    },
  };
  return client;
}
