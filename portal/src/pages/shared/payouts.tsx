// A payouts table, shared by the partner's and the admin's pages.
import type { ComponentChildren } from 'preact';
import type { Schemas } from '../../api';
import { Table } from '../../components/list';
import { DateTime, Money, Status } from '../../components/ui';

export function PayoutTable(props: {
  rows: Schemas['Payout'][];
  partnerNames?: Map<string, string>;
  actions?: (p: Schemas['Payout']) => ComponentChildren;
}) {
  return (
    <Table
      caption="Payouts"
      columns={['Created', props.partnerNames && 'Partner', { label: 'Amount', class: 'num' }, 'Status', 'Commissions', 'Paid', props.actions && 'Actions']}
    >
      {props.rows.map((p) => (
        <tr key={p.id} data-status={p.status}>
          <td>
            <DateTime iso={p.createdAt} />
          </td>
          {props.partnerNames && <td>{props.partnerNames.get(p.partnerId) ?? p.partnerId}</td>}
          <td class="num">
            <Money amount={p.amount} currency={p.currency} />
          </td>
          <td>
            <Status value={p.status} />
          </td>
          <td>{p.commissionIds?.length ?? 0}</td>
          <td>
            <DateTime iso={p.paidAt} />
          </td>
          {props.actions && <td>{props.actions(p)}</td>}
        </tr>
      ))}
    </Table>
  );
}
