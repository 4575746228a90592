// The partner's dashboard: clicks, conversions and earnings (by currency and status), the
// clicks time series, and one row per link (reporting.md).
import type { Me } from '../../app';
import { get, type Schemas } from '../../api';
import { ClicksChart } from '../../components/chart';
import { Amounts, Empty, ErrorNotice, Link, Loading, PageTitle, useLoad } from '../../components/ui';
import { formatCount } from '../../format';

type Dashboard = Schemas['Dashboard'];

export function PartnerHome(props: { me: Me }) {
  const id = props.me.partnerId!;
  const dash = useLoad(() => get<Dashboard>(`/partners/${id}/dashboard?includeLinks=true`), [id]);
  const series = useLoad(() => get<Schemas['TimeSeries']>(`/partners/${id}/timeseries?bucket=day`), [id]);
  return (
    <>
      <PageTitle>Dashboard</PageTitle>
      <p class="muted">The last 30 days.</p>
      {dash.error?.status === 404 ? (
        <div class="notice" role="status">
          Reporting is not available on this server yet. Your <Link to="/links">links</Link> and{' '}
          <Link to="/commissions">commissions</Link> are.
        </div>
      ) : dash.error ? (
        <ErrorNotice error={dash.error} />
      ) : !dash.data ? (
        <Loading />
      ) : (
        <DashboardFigures d={dash.data} />
      )}
      <section aria-labelledby="series-h">
        <h2 id="series-h">Clicks over time</h2>
        {series.error ? (
          series.error.status === 404 ? (
            <p class="muted">The time series arrives with reporting.</p>
          ) : (
            <ErrorNotice error={series.error} />
          )
        ) : !series.data ? (
          <Loading />
        ) : (
          <ClicksChart buckets={series.data.buckets} />
        )}
      </section>
    </>
  );
}

function DashboardFigures(props: { d: Dashboard }) {
  const d = props.d;
  const s = d.commissionByStatus;
  const earnings = ['accrued', 'approved', 'paid'] as const;
  return (
    <>
      <section aria-labelledby="figures-h">
        <h2 id="figures-h" class="sr-only">
          Figures
        </h2>
        <dl class="figures">
          <div class="figure" data-testid="figure-clicks">
            <dt>Clicks</dt>
            <dd>{formatCount(d.clicks)}</dd>
          </div>
          <div class="figure" data-testid="figure-conversions">
            <dt>Conversions</dt>
            <dd>{formatCount(d.attributedEvents)}</dd>
          </div>
          <div class="figure" data-testid="figure-revenue">
            <dt>Revenue</dt>
            <dd>
              <Amounts items={d.revenueByCurrency} />
            </dd>
          </div>
          <div class="figure" data-testid="figure-earnings">
            <dt>Earnings</dt>
            <dd>
              <ul class="plain">
                {earnings.map((st) => (
                  <li key={st}>
                    <span class="muted">{st}: </span>
                    <Amounts items={s?.[st]} />
                  </li>
                ))}
              </ul>
            </dd>
          </div>
        </dl>
      </section>
      <section aria-labelledby="links-h">
        <h2 id="links-h">Your links</h2>
        {!d.links || d.links.length === 0 ? (
          <Empty title="No links yet.">
            <Link to="/links">Create a link</Link> and share it: clicks and conversions show up here.
          </Empty>
        ) : (
          <table>
            <caption class="sr-only">Figures per link</caption>
            <thead>
              <tr>
                <th scope="col">Link</th>
                <th scope="col">Clicks</th>
                <th scope="col">Conversions</th>
                <th scope="col">Revenue</th>
              </tr>
            </thead>
            <tbody>
              {d.links.map((l) => (
                <tr key={l.linkKey}>
                  <th scope="row">{l.linkKey}</th>
                  <td>{formatCount(l.clicks)}</td>
                  <td>{formatCount(l.attributedEvents)}</td>
                  <td>
                    <Amounts items={l.revenueByCurrency} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}
