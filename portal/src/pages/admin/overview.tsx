// The program at a glance (`GET /admin/overview`, reporting.md): totals and a row per partner.
import { get, query, type Schemas } from '../../api';
import { ListRows, Table, usePagedList } from '../../components/list';
import { Amounts, Empty, Link, Loaded, PageTitle, Status } from '../../components/ui';
import { formatCount } from '../../format';
import { EarningsFigure, Figure } from '../shared/figures';

type Overview = Schemas['Overview'];

export function AdminOverview() {
  const ov = usePagedList((cursor) => get<Overview>(`/admin/overview${query({ cursor })}`), []);
  return (
    <>
      <PageTitle>Overview</PageTitle>
      <p class="muted">The last 30 days.</p>
      <Loaded
        state={ov}
        unavailable={
          <div class="notice" role="status">
            Reporting is not available on this server yet. Manage <Link to="/partners">partners</Link>,{' '}
            <Link to="/campaigns">campaigns</Link> and <Link to="/commissions">commissions</Link> meanwhile.
          </div>
        }
      >
        {(o) => (
          <>
            <dl class="figures">
              <Figure label="Partners">{formatCount(o.totals.partners)}</Figure>
              <Figure label="Clicks" testId="figure-clicks">
                {formatCount(o.totals.clicks)}
              </Figure>
              <Figure label="Conversions" testId="figure-conversions">
                {formatCount(o.totals.attributedEvents)}
              </Figure>
              <Figure label="Revenue">
                <Amounts items={o.totals.revenueByCurrency} />
              </Figure>
              <EarningsFigure byStatus={o.totals.commissionByStatus} />
            </dl>
            <h2>Partners</h2>
            <ListRows
              page={o}
              paging={ov}
              empty={
                <Empty title="No partners yet.">
                  <Link to="/partners">Invite your first partner</Link>.
                </Empty>
              }
            >
              {(rows) => (
                <Table caption="Figures per partner" columns={['Partner', 'Status', 'Clicks', 'Conversions', 'Revenue', 'Accrued', 'Paid']}>
                  {rows.map((p) => (
                    <tr key={p.partnerId}>
                      <th scope="row">
                        <Link to={`/partners/${p.partnerId}`}>{p.name || p.email}</Link>
                      </th>
                      <td>
                        <Status value={p.status} />
                      </td>
                      <td>{formatCount(p.clicks)}</td>
                      <td>{formatCount(p.attributedEvents)}</td>
                      <td>
                        <Amounts items={p.revenueByCurrency} />
                      </td>
                      <td>
                        <Amounts items={p.commissionByStatus?.accrued} />
                      </td>
                      <td>
                        <Amounts items={p.commissionByStatus?.paid} />
                      </td>
                    </tr>
                  ))}
                </Table>
              )}
            </ListRows>
          </>
        )}
      </Loaded>
    </>
  );
}
