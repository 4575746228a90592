// The partner's dashboard: clicks, conversions and earnings (by currency and status), the
// clicks time series, and one row per link (reporting.md).
import type { Me } from '../../app';
import { get, type Schemas } from '../../api';
import { ClicksChart } from '../../components/chart';
import { ListRows, Table } from '../../components/list';
import { Amounts, Empty, Link, Loaded, PageTitle, useLoad } from '../../components/ui';
import { formatCount } from '../../format';
import { EarningsFigure, Figure } from '../shared/figures';

type Dashboard = Schemas['Dashboard'];

export function PartnerHome(props: { me: Me }) {
  const id = props.me.partnerId!;
  const dash = useLoad(() => get<Dashboard>(`/partners/${id}/dashboard?includeLinks=true`), [id]);
  const series = useLoad(() => get<Schemas['TimeSeries']>(`/partners/${id}/timeseries?bucket=day`), [id]);
  return (
    <>
      <PageTitle>Dashboard</PageTitle>
      <p class="muted">The last 30 days.</p>
      <Loaded
        state={dash}
        unavailable={
          <div class="notice" role="status">
            Reporting is not available on this server yet. Your <Link to="/links">links</Link> and{' '}
            <Link to="/commissions">commissions</Link> are.
          </div>
        }
      >
        {(d) => <DashboardFigures d={d} />}
      </Loaded>
      <section aria-labelledby="series-h">
        <h2 id="series-h">Clicks over time</h2>
        <Loaded state={series} unavailable={<p class="muted">The time series arrives with reporting.</p>}>
          {(s) => <ClicksChart buckets={s.buckets} />}
        </Loaded>
      </section>
    </>
  );
}

function DashboardFigures(props: { d: Dashboard }) {
  const d = props.d;
  return (
    <>
      <section aria-labelledby="figures-h">
        <h2 id="figures-h" class="sr-only">
          Figures
        </h2>
        <dl class="figures">
          <Figure label="Clicks" testId="figure-clicks">
            {formatCount(d.clicks)}
          </Figure>
          <Figure label="Conversions" testId="figure-conversions">
            {formatCount(d.attributedEvents)}
          </Figure>
          <Figure label="Revenue" testId="figure-revenue">
            <Amounts items={d.revenueByCurrency} />
          </Figure>
          <EarningsFigure byStatus={d.commissionByStatus} />
        </dl>
      </section>
      <section aria-labelledby="links-h">
        <h2 id="links-h">Your links</h2>
        <ListRows
          page={{ data: d.links ?? [] }}
          empty={
            <Empty title="No links yet.">
              <Link to="/links">Create a link</Link> and share it: clicks and conversions show up here.
            </Empty>
          }
        >
          {(rows) => (
            <Table caption="Figures per link" columns={['Link', 'Clicks', 'Conversions', 'Revenue']}>
              {rows.map((l) => (
                <tr key={l.linkKey}>
                  <th scope="row">{l.linkKey}</th>
                  <td>{formatCount(l.clicks)}</td>
                  <td>{formatCount(l.attributedEvents)}</td>
                  <td>
                    <Amounts items={l.revenueByCurrency} />
                  </td>
                </tr>
              ))}
            </Table>
          )}
        </ListRows>
      </section>
    </>
  );
}
