// Type-level checks of the published declarations, as an ES module consumer sees them.
import { OpenPartner, OpenPartnerError } from '@openpartner/sdk';
import type { IdentifyResponse } from '@openpartner/sdk';
import {
  createClient,
  OpenPartnerServer,
  verifyWebhook,
  verifyWebhookAsync,
  WebhookVerificationError,
  collect,
} from '@openpartner/sdk/server';
import type { CreatedPartner, Partner, TrackEventResult, Campaign, Commission, paths } from '@openpartner/sdk/server';

export async function browser(): Promise<IdentifyResponse | null> {
  const op = OpenPartner.init({ apiUrl: 'https://x.example/api/t/acme', onError: (e) => void e });
  const cref: string | null = op.getCref();
  const ref: string | null = op.getReferral();
  void cref;
  void ref;
  op.clear();
  return op.identify('user_1');
}

export async function server(): Promise<void> {
  const op = createClient({ baseUrl: 'https://x.example/api/t/acme', apiKey: 'op_x', maxRetries: 3 });
  // Documented operations take the generated types.
  const p: CreatedPartner = await op.partners.create({ email: 'a@b.c', name: 'A', sendInvite: false });
  const invited: boolean = p.invited;
  void invited;
  // @ts-expect-error name is required by the document
  await op.partners.create({ email: 'a@b.c' });
  // @ts-expect-error status is an enum in the document
  await op.partners.list({ status: 'sleeping' });
  for await (const partner of op.partners.iterate({ limit: 100 })) {
    const email: string = partner.email;
    void email;
  }
  const all: Partner[] = await collect(op.partners.iterate());
  void all;
  // Loose (contract) types where the document has placeholders.
  const c: Campaign = await op.campaigns.get('c1');
  const model: string = c.attributionModel;
  void model;
  const ev: TrackEventResult = await op.trackEvent({ userId: 'u', type: 'invoice_paid', value: '10.00', eventId: 'inv' });
  const status: string = ev.attribution.status;
  void status;
  const list = await op.commissions.list({ status: 'approved' });
  const first: Commission | undefined = list.data[0];
  void first;
  await op.request<{ ok: boolean }>('POST', '/payouts/run', {}, { idempotencyKey: 'run-1' });
  const legacy = new OpenPartnerServer({ apiUrl: 'https://x', apiKey: 'k' });
  await legacy.trackEvent({ userId: 'u', type: 'signup' });
  await legacy.identify({ cref: 'c', userId: 'u', ts: Date.now() });
  await legacy.refund({ userId: 'u', refundOf: 'inv' });
  const ok: true = verifyWebhook('{}', { 'webhook-id': 'x' }, 'whsec_x', { toleranceSeconds: 60 });
  const ok2: true = await verifyWebhookAsync('{}', new Headers(), ['whsec_a', 'whsec_b']);
  void ok;
  void ok2;
  try {
    await op.partners.get('nope');
  } catch (e) {
    if (e instanceof OpenPartnerError) {
      const s: number = e.status;
      const code: string | undefined = e.code;
      void s;
      void code;
    }
    if (e instanceof WebhookVerificationError) void e.code;
  }
  type PartnersPath = paths['/partners'];
  const _path: keyof PartnersPath = 'post';
  void _path;
}
