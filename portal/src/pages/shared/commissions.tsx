// A commissions table and its status filter, shared by the partner's and the admin's pages.
import type { ComponentChildren } from 'preact';
import type { Schemas } from '../../api';
import { DateTime, Money, Status } from '../../components/ui';

export const STATUSES = ['accrued', 'approved', 'paid', 'reversed'] as const;

export function StatusFilter(props: { value: string; onChange: (s: string) => void; all?: boolean }) {
  return (
    <label class="field inline">
      <span class="label">Status</span>
      <select value={props.value} onChange={(e) => props.onChange(e.currentTarget.value)}>
        {props.all !== false && <option value="">All</option>}
        {STATUSES.map((s) => (
          <option key={s} value={s}>
            {s}
          </option>
        ))}
      </select>
    </label>
  );
}

export function CommissionTable(props: {
  rows: Schemas['Commission'][];
  partnerNames?: Map<string, string>;
  select?: (c: Schemas['Commission']) => ComponentChildren;
  selectAll?: ComponentChildren;
}) {
  return (
    <table>
      <caption class="sr-only">Commissions</caption>
      <thead>
        <tr>
          {props.select && <th scope="col">{props.selectAll}</th>}
          <th scope="col">Accrued</th>
          {props.partnerNames && <th scope="col">Partner</th>}
          <th scope="col">Event</th>
          <th scope="col" class="num">
            Amount
          </th>
          <th scope="col">Status</th>
          <th scope="col">Matures</th>
        </tr>
      </thead>
      <tbody>
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
      </tbody>
    </table>
  );
}
