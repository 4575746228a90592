import type { Schemas } from '../../api';
import { ConfirmButton, DateTime } from '../../components/ui';

export function KeyTable(props: { rows: Schemas['ApiKeyView'][]; onRevoke: (k: Schemas['ApiKeyView']) => void }) {
  return (
    <table>
      <caption class="sr-only">API keys</caption>
      <thead>
        <tr>
          <th scope="col">Key</th>
          <th scope="col">Label</th>
          <th scope="col">Kind</th>
          <th scope="col">Created</th>
          <th scope="col">Revoked</th>
          <th scope="col">Actions</th>
        </tr>
      </thead>
      <tbody>
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
      </tbody>
    </table>
  );
}
