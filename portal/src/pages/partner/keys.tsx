// The partner's own API keys: create (the key is shown once), list, revoke.
import { useState } from 'preact/hooks';
import type { Me } from '../../app';
import { get, del, post, query, type Page, type Schemas } from '../../api';
import { KeyTable } from '../shared/keys';
import { Empty, ErrorNotice, Field, Loaded, PageTitle, Pager, ShownOnce, formValues, useAction, useLoad } from '../../components/ui';

export function PartnerKeys(props: { me: Me }) {
  const id = props.me.partnerId!;
  const [cursor, setCursor] = useState<string | null>(null);
  const keys = useLoad(() => get<Page<Schemas['ApiKeyView']>>(`/partners/${id}/api-keys${query({ cursor })}`), [id, cursor]);
  const [created, setCreated] = useState<string | null>(null);
  const act = useAction();
  return (
    <>
      <PageTitle>API keys</PageTitle>
      <p>Keys let your own tools read your links and commissions. A key acts as you: keep it secret.</p>
      <form
        class="inline-form card"
        onSubmit={(e) => {
          e.preventDefault();
          const form = e.currentTarget;
          const { label } = formValues(e);
          act.run(async () => {
            const k = await post<Schemas['CreatedPartnerKey']>(`/partners/${id}/api-keys`, { label: label || undefined });
            setCreated(k.key);
            form.reset();
            keys.reload();
          });
        }}
      >
        <Field label="Label (optional)">
          <input name="label" maxLength={100} />
        </Field>
        <button type="submit" disabled={act.busy}>
          Create key
        </button>
      </form>
      {created && <ShownOnce label="Your new API key" value={created} onDone={() => setCreated(null)} />}
      <ErrorNotice error={act.error} />
      <Loaded state={keys}>
        {(page) =>
          page.data.length === 0 ? (
            <Empty title="No API keys.">Create one above when a tool needs to call the API for you.</Empty>
          ) : (
            <>
              <KeyTable rows={page.data} onRevoke={(k) => act.run(async () => (await del(`/api-keys/${k.id}`), keys.reload()))} />
              <Pager next={page.nextCursor} cursor={cursor} onPage={setCursor} />
            </>
          )
        }
      </Loaded>
    </>
  );
}
