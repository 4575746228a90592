// The partner's payouts (`GET /partners/:id/payouts`, reporting.md).
import type { Me } from '../../app';
import { get, query, type Page, type Schemas } from '../../api';
import { PayoutTable } from '../shared/payouts';
import { List, usePagedList } from '../../components/list';
import { Empty, Link, PageTitle } from '../../components/ui';

export function PartnerPayouts(props: { me: Me }) {
  const id = props.me.partnerId!;
  const list = usePagedList((cursor) => get<Page<Schemas['Payout']>>(`/partners/${id}/payouts${query({ cursor, limit: 50 })}`), [id]);
  return (
    <>
      <PageTitle>Payouts</PageTitle>
      <List
        list={list}
        unavailable={
          <div class="notice" role="status">
            Payout history is not available on this server yet. Paid commissions show as <em>paid</em> under{' '}
            <Link to="/commissions">Commissions</Link>.
          </div>
        }
        empty={<Empty title="No payouts yet.">Approved commissions are paid out in the program's next payout run.</Empty>}
      >
        {(rows) => <PayoutTable rows={rows} />}
      </List>
    </>
  );
}
