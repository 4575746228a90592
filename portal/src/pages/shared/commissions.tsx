// A commissions table and its status filter, shared by the partner's and the admin's pages.
import type { ComponentChildren } from 'preact';
import type { Schemas } from '../../api';
import { FilterSelect } from '../../components/form';
import { Table } from '../../components/list';
import { DateTime, Money, Status } from '../../components/ui';

export const STATUSES = ['accrued', 'approved', 'paid', 'reversed'] as const;

export function StatusFilter(props: { value: string; onChange: (s: string) => void }) {
  return <FilterSelect label="Status" value={props.value} onChange={props.onChange} all="All" options={STATUSES} />;
}

export function CommissionTable(props: {
  rows: Schemas['Commission'][];
  partnerNames?: Map<string, string>;
  select?: (c: Schemas['Commission']) => ComponentChildren;
  selectAll?: ComponentChildren;
}) {
  return (
    <Table
      caption="Commissions"
      columns={[props.select && { label: props.selectAll }, 'Accrued', props.partnerNames && 'Partner', 'Event', { label: 'Amount', class: 'num' }, 'Status', 'Matures']}
    >
      {props.rows.map((c) => (
        <tr key={c.id} data-status={c.status}>
          {props.select && <td>{props.select(c)}</td>}
          <td>
            <DateTime iso={c.accruedAt} />
          </td>
          {props.partnerNames && <td>{props.partnerNames.get(c.partnerId) ?? c.partnerId}</td>}
          <td>
            <code>{c.eventId}</code>
            {c.refundOf ? <span class="muted small"> refund of {c.refundOf}</span> : null}
          </td>
          <td class="num">
            <Money amount={c.amount} currency={c.currency} />
          </td>
          <td>
            <Status value={c.status} />
          </td>
          <td>
            <DateTime iso={c.matureAt} />
          </td>
        </tr>
      ))}
    </Table>
  );
}
