// The people who administer the tenant: invite, revoke.
import { useState } from 'preact/hooks';
import { get, post, query, type Page, type Schemas } from '../../api';
import { ConfirmButton, DateTime, Empty, ErrorNotice, Field, Loaded, PageTitle, Pager, Status, formValues, useAction, useLoad } from '../../components/ui';

export function AdminAdmins() {
  const [cursor, setCursor] = useState<string | null>(null);
  const list = useLoad(() => get<Page<Schemas['AdminView']>>(`/admins${query({ cursor })}`), [cursor]);
  const act = useAction();
  const [note, setNote] = useState<string | null>(null);
  return (
    <>
      <PageTitle>Admins</PageTitle>
      <form
        class="inline-form card"
        onSubmit={(e) => {
          e.preventDefault();
          const form = e.currentTarget;
          const v = formValues(e);
          act.run(async () => {
            await post('/admins', { email: v.email, name: v.name || undefined, sendInvite: true });
            setNote(`Invitation sent to ${v.email}.`);
            form.reset();
            list.reload();
          });
        }}
      >
        <Field label="Name (optional)">
          <input name="name" maxLength={200} />
        </Field>
        <Field label="Email">
          <input name="email" type="email" required />
        </Field>
        <button type="submit" disabled={act.busy}>
          Invite admin
        </button>
      </form>
      {note && (
        <p class="notice success" role="status">
          {note}
        </p>
      )}
      <ErrorNotice error={act.error} />
      <Loaded state={list}>
        {(page) =>
          page.data.length === 0 ? (
            <Empty title="No admins yet.">Invite a colleague above.</Empty>
          ) : (
            <>
              <table>
                <caption class="sr-only">Admins</caption>
                <thead>
                  <tr>
                    <th scope="col">Email</th>
                    <th scope="col">Name</th>
                    <th scope="col">Status</th>
                    <th scope="col">Created</th>
                    <th scope="col">Actions</th>
                  </tr>
                </thead>
                <tbody>
                  {page.data.map((a) => (
                    <tr key={a.id}>
                      <th scope="row">{a.email}</th>
                      <td>{a.name ?? '—'}</td>
                      <td>
                        <Status value={a.status} />
                      </td>
                      <td>
                        <DateTime iso={a.createdAt} />
                      </td>
                      <td>
                        {a.status !== 'revoked' && (
                          <ConfirmButton
                            label="Revoke"
                            title={`Revoke ${a.email}?`}
                            message={<p>Their sessions end at once and their sign-in links stop working.</p>}
                            danger
                            onConfirm={() => act.run(async () => (await post(`/admins/${a.id}/revoke`), setNote(`${a.email} revoked.`), list.reload()))}
                          />
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <Pager next={page.nextCursor} cursor={cursor} onPage={setCursor} />
            </>
          )
        }
      </Loaded>
    </>
  );
}
