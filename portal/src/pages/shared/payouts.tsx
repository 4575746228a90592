import type { ComponentChildren } from 'preact';
import type { Schemas } from '../../api';
import { DateTime, Money, Status } from '../../components/ui';

export function PayoutTable(props: {
  rows: Schemas['Payout'][];
  partnerNames?: Map<string, string>;
  actions?: (p: Schemas['Payout']) => ComponentChildren;
}) {
  return (
    <table>
      <caption class="sr-only">Payouts</caption>
      <thead>
        <tr>
          <th scope="col">Created</th>
          {props.partnerNames && <th scope="col">Partner</th>}
          <th scope="col" class="num">
            Amount
          </th>
          <th scope="col">Status</th>
          <th scope="col">Commissions</th>
          <th scope="col">Paid</th>
          {props.actions && <th scope="col">Actions</th>}
        </tr>
      </thead>
      <tbody>
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
      </tbody>
    </table>
  );
}
