// The partner's own API keys: create (the key is shown once), list, revoke.
import { useState } from 'preact/hooks';
import type { Me } from '../../app';
import { get, post, query, type Page, type Schemas } from '../../api';
import { ActionForm, Field } from '../../components/form';
import { usePagedList } from '../../components/list';
import { ActionNotices, Empty, PageTitle, ShownOnce, useAction } from '../../components/ui';
import { KeyList } from '../shared/keys';

export function PartnerKeys(props: { me: Me }) {
  const id = props.me.partnerId!;
  const keys = usePagedList((cursor) => get<Page<Schemas['ApiKeyView']>>(`/partners/${id}/api-keys${query({ cursor })}`), [id]);
  const [created, setCreated] = useState<string | null>(null);
  const act = useAction();
  return (
    <>
      <PageTitle>API keys</PageTitle>
      <p>Keys let your own tools read your links and commissions. A key acts as you: keep it secret.</p>
      <ActionForm
        class="inline-form card"
        action={act}
        submit="Create key"
        onSubmit={async ({ label }) => {
          const k = await post<Schemas['CreatedPartnerKey']>(`/partners/${id}/api-keys`, { label: label || undefined });
          setCreated(k.key);
          keys.reload();
        }}
      >
        <Field label="Label (optional)">
          <input name="label" maxLength={100} />
        </Field>
      </ActionForm>
      {created && <ShownOnce label="Your new API key" value={created} onDone={() => setCreated(null)} />}
      <ActionNotices action={act} />
      <KeyList keys={keys} action={act} empty={<Empty title="No API keys.">Create one above when a tool needs to call the API for you.</Empty>} />
    </>
  );
}
