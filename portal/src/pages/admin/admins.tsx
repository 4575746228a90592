// The people who administer the tenant: invite, revoke.
import { get, post, query, type Page, type Schemas } from '../../api';
import { ActionForm, Field } from '../../components/form';
import { List, Table, usePagedList } from '../../components/list';
import { ActionNotices, ConfirmButton, DateTime, Empty, PageTitle, Status, useAction } from '../../components/ui';

export function AdminAdmins() {
  const list = usePagedList((cursor) => get<Page<Schemas['AdminView']>>(`/admins${query({ cursor })}`), []);
  const act = useAction();
  return (
    <>
      <PageTitle>Admins</PageTitle>
      <ActionForm
        class="inline-form card"
        action={act}
        submit="Invite admin"
        onSubmit={async (v) => {
          await post('/admins', { email: v.email, name: v.name || undefined, sendInvite: true });
          act.done(`Invitation sent to ${v.email}.`, list);
        }}
      >
        <Field label="Name (optional)">
          <input name="name" maxLength={200} />
        </Field>
        <Field label="Email">
          <input name="email" type="email" required />
        </Field>
      </ActionForm>
      <ActionNotices action={act} />
      <List list={list} empty={<Empty title="No admins yet.">Invite a colleague above.</Empty>}>
        {(rows) => (
          <Table caption="Admins" columns={['Email', 'Name', 'Status', 'Created', 'Actions']}>
            {rows.map((a) => (
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
                      onConfirm={() => act.run(async () => (await post(`/admins/${a.id}/revoke`), act.done(`${a.email} revoked.`, list)))}
                    />
                  )}
                </td>
              </tr>
            ))}
          </Table>
        )}
      </List>
    </>
  );
}
