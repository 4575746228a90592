// The partner's commissions, filtered by status, a page at a time (the API's cursors).
import { useState } from 'preact/hooks';
import type { Me } from '../../app';
import { get, query, type Page, type Schemas } from '../../api';
import { CommissionTable, StatusFilter } from '../shared/commissions';
import { List, usePagedList } from '../../components/list';
import { Empty, PageTitle } from '../../components/ui';

export function PartnerCommissions(props: { me: Me }) {
  const id = props.me.partnerId!;
  const [status, setStatus] = useState('');
  const list = usePagedList((cursor) => get<Page<Schemas['Commission']>>(`/partners/${id}/commissions${query({ status, cursor, limit: 50 })}`), [id, status]);
  return (
    <>
      <PageTitle>Commissions</PageTitle>
      <StatusFilter
        value={status}
        onChange={(s) => {
          setStatus(s);
          list.setCursor(null);
        }}
      />
      <List
        list={list}
        empty={
          <Empty title={status ? `No ${status} commissions.` : 'No commissions yet.'}>
            Commissions appear when people you referred convert. Share your links to get started.
          </Empty>
        }
      >
        {(rows) => <CommissionTable rows={rows} />}
      </List>
    </>
  );
}
