// API keys, as the admin's settings and the partner's keys page list them: a page of keys,
// each revoked after confirming.
import type { ComponentChildren } from 'preact';
import { del, type Page, type Schemas } from '../../api';
import { List, Table, type PagedList } from '../../components/list';
import { ConfirmButton, DateTime, type Action } from '../../components/ui';

type ApiKey = Schemas['ApiKeyView'];

/** A page of keys (or `empty`) with its pager; "Revoke" runs through `action`, then reloads. */
export function KeyList(props: { keys: PagedList<Page<ApiKey>>; action: Action; empty: ComponentChildren }) {
  const { keys, action } = props;
  return (
    <List list={keys} empty={props.empty}>
      {(rows) => <KeyTable rows={rows} onRevoke={(k) => action.run(async () => (await del(`/api-keys/${k.id}`), keys.reload()))} />}
    </List>
  );
}

function KeyTable(props: { rows: ApiKey[]; onRevoke: (k: ApiKey) => void }) {
  return (
    <Table caption="API keys" columns={['Key', 'Label', 'Kind', 'Created', 'Revoked', 'Actions']}>
      {props.rows.map((k) => (
        <tr key={k.id}>
          <th scope="row">
            <code>op_{k.prefix}…</code>
          </th>
          <td>{k.label ?? '—'}</td>
          <td>
            {k.role}
            {k.scopes?.length ? ` (${k.scopes.join(', ')})` : ''}
          </td>
          <td>
            <DateTime iso={k.createdAt} />
          </td>
          <td>
            <DateTime iso={k.revokedAt} />
          </td>
          <td>
            {!k.revokedAt && (
              <ConfirmButton
                label="Revoke"
                title="Revoke this key?"
                message={<p>Tools using op_{k.prefix}… stop working at once. This cannot be undone.</p>}
                danger
                onConfirm={() => props.onRevoke(k)}
              />
            )}
          </td>
        </tr>
      ))}
    </Table>
  );
}
