// Settings, as the API allows today: where the API lives, and the tenant's API keys (admin
// keys and scoped keys for integrations). Stripe, branding, mail and export/import settings
// arrive with their APIs.
import { useState } from 'preact/hooks';
import { apiBase, get, post, query, routerBase, type Page, type Schemas } from '../../api';
import { ActionForm, CheckGroup, Field } from '../../components/form';
import { usePagedList } from '../../components/list';
import { ActionNotices, Empty, PageTitle, ShownOnce, useAction } from '../../components/ui';
import { KeyList } from '../shared/keys';

const SCOPES = ['events:write', 'partners:read', 'partners:write', 'commissions:read', 'links:write', 'webhooks:write', 'clicks:write'];

export function AdminSettings() {
  const keys = usePagedList((cursor) => get<Page<Schemas['ApiKeyView']>>(`/api-keys${query({ cursor })}`), []);
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
        <ActionForm
          class="card"
          action={act}
          submit="Create key"
          onSubmit={async (_, f) => {
            const scopes = f.getAll('scopes').map(String);
            const label = String(f.get('label') ?? '').trim();
            const k = await post<{ key: string }>('/api-keys', { label: label || undefined, ...(scopes.length ? { scopes } : {}) });
            setCreated(k.key);
            keys.reload();
          }}
        >
          <Field label="Label (optional)">
            <input name="label" maxLength={100} />
          </Field>
          <CheckGroup legend="Scopes (none checked: a full admin key)" name="scopes" values={SCOPES} />
        </ActionForm>
        {created && <ShownOnce label="New API key" value={created} onDone={() => setCreated(null)} />}
        <ActionNotices action={act} />
        <KeyList keys={keys} action={act} empty={<Empty title="No API keys.">Create one for your backend to report events.</Empty>} />
      </section>
    </>
  );
}
