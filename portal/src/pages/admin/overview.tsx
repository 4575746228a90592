// The program at a glance (`GET /admin/overview`, reporting.md): totals and a row per partner.
import { useState } from 'preact/hooks';
import { get, query, type Schemas } from '../../api';
import { Amounts, Empty, ErrorNotice, Link, Loading, PageTitle, Pager, Status, useLoad } from '../../components/ui';
import { formatCount } from '../../format';

type Overview = Schemas['Overview'];

export function AdminOverview() {
  const [cursor, setCursor] = useState<string | null>(null);
  const ov = useLoad(() => get<Overview>(`/admin/overview${query({ cursor })}`), [cursor]);
  return (
    <>
      <PageTitle>Overview</PageTitle>
      <p class="muted">The last 30 days.</p>
      {ov.error?.status === 404 ? (
        <div class="notice" role="status">
          Reporting is not available on this server yet. Manage <Link to="/partners">partners</Link>,{' '}
          <Link to="/campaigns">campaigns</Link> and <Link to="/commissions">commissions</Link> meanwhile.
        </div>
      ) : ov.error ? (
        <ErrorNotice error={ov.error} />
      ) : !ov.data ? (
        <Loading />
      ) : (
        <>
          <dl class="figures">
            <div class="figure">
              <dt>Partners</dt>
              <dd>{formatCount(ov.data.totals.partners)}</dd>
            </div>
            <div class="figure" data-testid="figure-clicks">
              <dt>Clicks</dt>
              <dd>{formatCount(ov.data.totals.clicks)}</dd>
            </div>
            <div class="figure" data-testid="figure-conversions">
              <dt>Conversions</dt>
              <dd>{formatCount(ov.data.totals.attributedEvents)}</dd>
            </div>
            <div class="figure">
              <dt>Revenue</dt>
              <dd>
                <Amounts items={ov.data.totals.revenueByCurrency} />
              </dd>
            </div>
            <div class="figure" data-testid="figure-earnings">
              <dt>Earnings</dt>
              <dd>
                <ul class="plain">
                  {(['accrued', 'approved', 'paid'] as const).map((s) => (
                    <li key={s}>
                      <span class="muted">{s}: </span>
                      <Amounts items={ov.data!.totals.commissionByStatus?.[s]} />
                    </li>
                  ))}
                </ul>
              </dd>
            </div>
          </dl>
          <h2>Partners</h2>
          {ov.data.data.length === 0 ? (
            <Empty title="No partners yet.">
              <Link to="/partners">Invite your first partner</Link>.
            </Empty>
          ) : (
            <>
              <table>
                <caption class="sr-only">Figures per partner</caption>
                <thead>
                  <tr>
                    <th scope="col">Partner</th>
                    <th scope="col">Status</th>
                    <th scope="col">Clicks</th>
                    <th scope="col">Conversions</th>
                    <th scope="col">Revenue</th>
                    <th scope="col">Accrued</th>
                    <th scope="col">Paid</th>
                  </tr>
                </thead>
                <tbody>
                  {ov.data.data.map((p) => (
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
                </tbody>
              </table>
              <Pager next={ov.data.nextCursor} cursor={cursor} onPage={setCursor} />
            </>
          )}
        </>
      )}
    </>
  );
}
