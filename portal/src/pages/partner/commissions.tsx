// The partner's commissions, filtered by status, a page at a time (the API's cursors).
import { useState } from 'preact/hooks';
import type { Me } from '../../app';
import { get, query, type Page, type Schemas } from '../../api';
import { CommissionTable, StatusFilter } from '../shared/commissions';
import { Empty, Loaded, PageTitle, Pager, useLoad } from '../../components/ui';

export function PartnerCommissions(props: { me: Me }) {
  const id = props.me.partnerId!;
  const [status, setStatus] = useState('');
  const [cursor, setCursor] = useState<string | null>(null);
  const list = useLoad(
    () => get<Page<Schemas['Commission']>>(`/partners/${id}/commissions${query({ status, cursor, limit: 50 })}`),
    [id, status, cursor],
  );
  return (
    <>
      <PageTitle>Commissions</PageTitle>
      <StatusFilter
        value={status}
        onChange={(s) => {
          setStatus(s);
          setCursor(null);
        }}
      />
      <Loaded state={list}>
        {(page) =>
          page.data.length === 0 ? (
            <Empty title={status ? `No ${status} commissions.` : 'No commissions yet.'}>
              Commissions appear when people you referred convert. Share your links to get started.
            </Empty>
          ) : (
            <>
              <CommissionTable rows={page.data} />
              <Pager next={page.nextCursor} cursor={cursor} onPage={setCursor} />
            </>
          )
        }
      </Loaded>
    </>
  );
}
