// Settings, as the API allows today: where the API lives, and the tenant's API keys (admin
// keys and scoped keys for integrations). Stripe, branding, mail and export/import settings
// arrive with their APIs.
import { useState } from 'preact/hooks';
import { apiBase, del, get, post, query, routerBase, type Page, type Schemas } from '../../api';
import { Empty, ErrorNotice, Field, Loaded, PageTitle, Pager, ShownOnce, useAction, useLoad } from '../../components/ui';
import { KeyTable } from '../shared/keys';

const SCOPES = ['events:write', 'partners:read', 'partners:write', 'commissions:read', 'links:write', 'webhooks:write', 'clicks:write'];

export function AdminSettings() {
  const [cursor, setCursor] = useState<string | null>(null);
  const keys = useLoad(() => get<Page<Schemas['ApiKeyView']>>(`/api-keys${query({ cursor })}`), [cursor]);
  const act = useAction();
  const [created, setCreated] = useState<string | null>(null);
  return (
    <>
      <PageTitle>Settings</PageTitle>
      <section aria-labelledby="api-h">
        <h2 id="api-h">API</h2>
        <dl class="details">
          <dt>API base URL</dt>
          <dd>
            <code>{location.origin + apiBase}</code>
          </dd>
          <dt>Link base URL</dt>
          <dd>
            <code>{routerBase}</code>
          </dd>
          <dt>API description</dt>
          <dd>
            <a href={`${apiBase}/openapi.json`}>OpenAPI document</a>
          </dd>
        </dl>
      </section>
      <section aria-labelledby="keys-h">
        <h2 id="keys-h">API keys</h2>
        <form
          class="card"
          onSubmit={(e) => {
            e.preventDefault();
            const form = e.currentTarget;
            const f = new FormData(form);
            const scopes = f.getAll('scopes').map(String);
            const label = String(f.get('label') ?? '').trim();
            act.run(async () => {
              const k = await post<{ key: string }>('/api-keys', { label: label || undefined, ...(scopes.length ? { scopes } : {}) });
              setCreated(k.key);
              form.reset();
              keys.reload();
            });
          }}
        >
          <Field label="Label (optional)">
            <input name="label" maxLength={100} />
          </Field>
          <fieldset>
            <legend>Scopes (none checked: a full admin key)</legend>
            <div class="checks">
              {SCOPES.map((s) => (
                <label key={s} class="field check">
                  <input type="checkbox" name="scopes" value={s} />
                  <span class="label">{s}</span>
                </label>
              ))}
            </div>
          </fieldset>
          <button type="submit" disabled={act.busy}>
            Create key
          </button>
        </form>
        {created && <ShownOnce label="New API key" value={created} onDone={() => setCreated(null)} />}
        <ErrorNotice error={act.error} />
        <Loaded state={keys}>
          {(page) =>
            page.data.length === 0 ? (
              <Empty title="No API keys.">Create one for your backend to report events.</Empty>
            ) : (
              <>
                <KeyTable rows={page.data} onRevoke={(k) => act.run(async () => (await del(`/api-keys/${k.id}`), keys.reload()))} />
                <Pager next={page.nextCursor} cursor={cursor} onPage={setCursor} />
              </>
            )
          }
        </Loaded>
      </section>
    </>
  );
}
