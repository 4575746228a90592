// The same entry points as a CommonJS consumer resolves them (require conditions, .d.cts).
import sdk = require('@openpartner/sdk');
import server = require('@openpartner/sdk/server');

export function check(): void {
  const op = sdk.OpenPartner.init({ apiUrl: 'https://x.example/api' });
  void op.getCref();
  const c = server.createClient({ baseUrl: 'https://x.example/api', apiKey: 'k' });
  void c.partners.list({ limit: 10 });
  const e: server.OpenPartnerError = new server.OpenPartnerError('m', 400, 'code');
  void e;
  void server.verifyWebhook;
}
