// The partner's payouts (`GET /partners/:id/payouts`, reporting.md).
import { useState } from 'preact/hooks';
import type { Me } from '../../app';
import { get, query, type Page, type Schemas } from '../../api';
import { PayoutTable } from '../shared/payouts';
import { Empty, ErrorNotice, Link, Loading, PageTitle, Pager, useLoad } from '../../components/ui';

export function PartnerPayouts(props: { me: Me }) {
  const id = props.me.partnerId!;
  const [cursor, setCursor] = useState<string | null>(null);
  const list = useLoad(() => get<Page<Schemas['Payout']>>(`/partners/${id}/payouts${query({ cursor, limit: 50 })}`), [id, cursor]);
  return (
    <>
      <PageTitle>Payouts</PageTitle>
      {list.error?.status === 404 ? (
        <div class="notice" role="status">
          Payout history is not available on this server yet. Paid commissions show as <em>paid</em> under{' '}
          <Link to="/commissions">Commissions</Link>.
        </div>
      ) : list.error ? (
        <ErrorNotice error={list.error} />
      ) : !list.data ? (
        <Loading />
      ) : list.data.data.length === 0 ? (
        <Empty title="No payouts yet.">Approved commissions are paid out in the program's next payout run.</Empty>
      ) : (
        <>
          <PayoutTable rows={list.data.data} />
          <Pager next={list.data.nextCursor} cursor={cursor} onPage={setCursor} />
        </>
      )}
    </>
  );
}
