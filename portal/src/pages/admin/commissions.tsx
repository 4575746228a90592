// The commissions queue: filter, select, approve or reverse in bulk (after confirming).
import { useState } from 'preact/hooks';
import { get, post, query, type Page, type Schemas } from '../../api';
import { Field, FilterSelect } from '../../components/form';
import { List, usePagedList } from '../../components/list';
import { ActionNotices, ConfirmButton, Empty, PageTitle, useAction } from '../../components/ui';
import { CommissionTable, StatusFilter } from '../shared/commissions';
import { usePartnerNames } from './names';

type Commission = Schemas['Commission'];

export function AdminCommissions() {
  const [status, setStatus] = useState('accrued');
  const [partnerId, setPartnerId] = useState('');
  const list = usePagedList((cursor) => get<Page<Commission>>(`/commissions${query({ status, partnerId, cursor, limit: 100 })}`), [status, partnerId]);
  const names = usePartnerNames();
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const act = useAction();
  const rows = list.data?.data ?? [];
  const selectable = rows.filter((c) => c.status === 'accrued' || c.status === 'approved');
  const ids = [...selected].filter((id) => rows.some((r) => r.id === id));
  const after = (msg: string) => {
    setSelected(new Set());
    act.done(msg, list);
  };
  const toggle = (id: string, on: boolean) => {
    const s = new Set(selected);
    if (on) s.add(id);
    else s.delete(id);
    setSelected(s);
  };
  return (
    <>
      <PageTitle>Commissions</PageTitle>
      <div class="filters">
        <StatusFilter
          value={status}
          onChange={(s) => {
            setStatus(s);
            list.setCursor(null);
            setSelected(new Set());
          }}
        />
        <FilterSelect
          label="Partner"
          value={partnerId}
          all="All partners"
          options={names}
          onChange={(id) => {
            setPartnerId(id);
            list.setCursor(null);
            setSelected(new Set());
          }}
        />
        <ConfirmButton
          label={`Approve selected (${ids.length})`}
          title={`Approve ${ids.length} commission${ids.length === 1 ? '' : 's'}?`}
          message={<p>Approved commissions are paid in the next payout run.</p>}
          confirmLabel="Approve"
          disabled={ids.length === 0}
          onConfirm={() =>
            act.run(async () => {
              await post('/commissions/approve', { ids });
              after(`${ids.length} approved.`);
            })
          }
        />
        <ConfirmButton
          label={`Reverse selected (${ids.length})`}
          title={`Reverse ${ids.length} commission${ids.length === 1 ? '' : 's'}?`}
          message={<p>Reversed commissions are never paid. This cannot be undone.</p>}
          fields={
            <Field label="Reason">
              <input name="reason" maxLength={500} />
            </Field>
          }
          danger
          confirmLabel="Reverse"
          disabled={ids.length === 0}
          onConfirm={(v) =>
            act.run(async () => {
              await post('/commissions/reverse', { ids, reason: v.reason || undefined });
              after(`${ids.length} reversed.`);
            })
          }
        />
      </div>
      <ActionNotices action={act} />
      <List
        list={list}
        empty={
          <Empty title={status ? `No ${status} commissions.` : 'No commissions yet.'}>
            Commissions appear when events are attributed to partners' clicks.
          </Empty>
        }
      >
        {(rows) => (
          <CommissionTable
            rows={rows}
            partnerNames={names}
            selectAll={
              <input
                type="checkbox"
                aria-label="Select all on this page"
                disabled={selectable.length === 0}
                checked={selectable.length > 0 && selectable.every((c) => selected.has(c.id))}
                onChange={(e) => setSelected(e.currentTarget.checked ? new Set(selectable.map((c) => c.id)) : new Set())}
              />
            }
            select={(c) => (
              <input
                type="checkbox"
                aria-label={`Select commission ${c.id}`}
                disabled={c.status !== 'accrued' && c.status !== 'approved'}
                checked={selected.has(c.id)}
                onChange={(e) => toggle(c.id, e.currentTarget.checked)}
              />
            )}
          />
        )}
      </List>
    </>
  );
}
