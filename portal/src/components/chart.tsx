// The dashboard's time series: clicks per bucket as bars (SVG), with the same figures in a
// table for screen readers and keyboard users.
import { formatCount, formatDay } from '../format';
import { Table } from './list';

export interface Bucket {
  bucket: string;
  clicks: number;
  leads: number;
  sales: number;
}

export function ClicksChart(props: { buckets: Bucket[] }) {
  const b = props.buckets;
  const max = Math.max(1, ...b.map((x) => x.clicks));
  const w = 600;
  const h = 160;
  const bw = w / Math.max(1, b.length);
  const total = b.reduce((s, x) => s + x.clicks, 0);
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${w} ${h + 4}`} role="img" aria-label={`Clicks over time: ${formatCount(total)} in ${b.length} periods`}>
        <line x1="0" y1={h} x2={w} y2={h} stroke="#6b7280" />
        {b.map((x, i) => {
          const bh = (x.clicks / max) * (h - 8);
          return (
            <rect key={x.bucket} x={i * bw + 1} y={h - bh} width={Math.max(1, bw - 2)} height={bh} fill="#1d4ed8">
              <title>
                {formatDay(x.bucket)}: {x.clicks} clicks
              </title>
            </rect>
          );
        })}
      </svg>
      <figcaption>
        Clicks per {b.length > 31 ? 'week' : 'day'}, {b.length ? `${formatDay(b[0].bucket)} – ${formatDay(b[b.length - 1].bucket)}` : 'no data'}
      </figcaption>
      <details>
        <summary>Show the figures as a table</summary>
        <Table columns={['Period', 'Clicks', 'Leads', 'Sales']}>
          {b.map((x) => (
            <tr key={x.bucket}>
              <td>{formatDay(x.bucket)}</td>
              <td>{formatCount(x.clicks)}</td>
              <td>{formatCount(x.leads)}</td>
              <td>{formatCount(x.sales)}</td>
            </tr>
          ))}
        </Table>
      </details>
    </figure>
  );
}
