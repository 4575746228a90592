// Payouts: a preview of the next run (approved commissions netted per partner and currency,
// exact decimals), the run itself, marking paid, and a CSV of the listed payouts.
import { get, post, query, type Page, type Schemas } from '../../api';
import { List, ListRows, Table, usePagedList } from '../../components/list';
import { ActionNotices, ConfirmButton, Empty, Loaded, Money, PageTitle, useAction, useLoad } from '../../components/ui';
import { currencyDigits, isPositive, sumDecimals } from '../../format';
import { PayoutTable } from '../shared/payouts';
import { usePartnerNames } from './names';

type Payout = Schemas['Payout'];

/** Every approved, unpaid commission (the run's input), up to 20 pages of 500. */
async function approved(): Promise<Schemas['Commission'][]> {
  const out: Schemas['Commission'][] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 20; i++) {
    const p: Page<Schemas['Commission']> = await get(`/commissions${query({ status: 'approved', limit: 500, cursor })}`);
    out.push(...p.data);
    cursor = p.nextCursor;
    if (!cursor) break;
  }
  return out;
}

export function AdminPayouts() {
  const names = usePartnerNames();
  const preview = useLoad(async () => {
    const groups = new Map<string, { partnerId: string; currency: string; amounts: string[] }>();
    for (const c of await approved()) {
      const k = `${c.partnerId} ${c.currency}`;
      const g = groups.get(k) ?? { partnerId: c.partnerId, currency: c.currency, amounts: [] };
      g.amounts.push(c.amount);
      groups.set(k, g);
    }
    return [...groups.values()].map((g) => ({ ...g, count: g.amounts.length, net: sumDecimals(g.amounts, currencyDigits(g.currency)) }));
  }, []);
  const list = usePagedList((cursor) => get<Page<Payout>>(`/payouts${query({ cursor, limit: 100 })}`), []);
  const act = useAction();
  const refresh = (msg: string) => act.done(msg, preview, list);
  const payable = (preview.data ?? []).filter((g) => isPositive(g.net));

  const csv = (rows: Payout[]) => {
    const esc = (v: unknown) => `"${String(v ?? '').replace(/"/g, '""')}"`;
    const lines = [['payoutId', 'partnerId', 'partner', 'amount', 'currency', 'status', 'createdAt', 'paidAt', 'commissions'].join(',')];
    for (const p of rows) {
      lines.push([p.id, p.partnerId, names.get(p.partnerId) ?? '', p.amount, p.currency, p.status, p.createdAt, p.paidAt ?? '', p.commissionIds.length].map(esc).join(','));
    }
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([lines.join('\r\n') + '\r\n'], { type: 'text/csv' }));
    a.download = 'payouts.csv';
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  };

  return (
    <>
      <PageTitle>Payouts</PageTitle>
      <section aria-labelledby="preview-h" class="card">
        <h2 id="preview-h">Next payout run</h2>
        <Loaded state={preview}>
          {(groups) => (
            <ListRows page={{ data: groups }} empty={<Empty title="Nothing to pay.">Approve commissions first: approved commissions are paid in the next run.</Empty>}>
              {(rows) => (
                <>
                  <Table caption="Preview: approved commissions per partner and currency" showCaption columns={['Partner', 'Commissions', { label: 'Net', class: 'num' }, 'Paid in this run']}>
                    {rows.map((g) => (
                      <tr key={`${g.partnerId} ${g.currency}`}>
                        <th scope="row">{names.get(g.partnerId) ?? g.partnerId}</th>
                        <td>{g.count}</td>
                        <td class="num">
                          <Money amount={g.net} currency={g.currency} />
                        </td>
                        <td>{isPositive(g.net) ? 'yes' : 'no (carried forward)'}</td>
                      </tr>
                    ))}
                  </Table>
                  <ConfirmButton
                    label="Run payouts"
                    title="Run payouts now?"
                    message={
                      <p>
                        {payable.length} payout{payable.length === 1 ? '' : 's'} will be created and their commissions marked paid.
                      </p>
                    }
                    confirmLabel="Run payouts"
                    disabled={payable.length === 0}
                    onConfirm={() =>
                      act.run(async () => {
                        const r = await post<Schemas['RunResult']>('/payouts/run', {});
                        refresh(`Payout run done: ${r.payouts.length} payout${r.payouts.length === 1 ? '' : 's'} created.`);
                      })
                    }
                  />
                </>
              )}
            </ListRows>
          )}
        </Loaded>
      </section>
      <ActionNotices action={act} />
      <section aria-labelledby="payouts-h">
        <h2 id="payouts-h">Payout history</h2>
        <List list={list} empty={<Empty title="No payouts yet.">Run payouts above once commissions are approved.</Empty>}>
          {(rows) => (
            <>
              <p>
                <button type="button" class="secondary" onClick={() => csv(rows)}>
                  Download CSV
                </button>
              </p>
              <PayoutTable
                rows={rows}
                partnerNames={names}
                actions={(p) =>
                  p.status === 'pending' && (
                    <ConfirmButton
                      label="Mark paid"
                      title="Mark this payout paid?"
                      message={
                        <p>
                          Confirm you sent <Money amount={p.amount} currency={p.currency} /> to {names.get(p.partnerId) ?? p.partnerId}.
                        </p>
                      }
                      onConfirm={() => act.run(async () => (await post(`/payouts/${p.id}/mark-paid`), refresh('Payout marked paid.')))}
                    />
                  )
                }
              />
            </>
          )}
        </List>
      </section>
    </>
  );
}
