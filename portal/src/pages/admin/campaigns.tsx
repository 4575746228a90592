// Campaigns (alias programs): the list, and the create / edit form with the commission rule
// editor (compound rules).
import { useState } from 'preact/hooks';
import { get, patch, post, query, type Page, type Schemas } from '../../api';
import { Field } from '../../components/form';
import { List, Table, usePagedList } from '../../components/list';
import { DateTime, Empty, ErrorNotice, Link, Loaded, PageTitle, useAction, useLoad } from '../../components/ui';
import { navigate } from '../../router';
import { RuleEditor, RuleSummary } from '../shared/rules';

type Campaign = Schemas['Campaign'];

export function AdminCampaigns() {
  const list = usePagedList((cursor) => get<Page<Campaign>>(`/campaigns${query({ cursor, limit: 50 })}`), []);
  return (
    <>
      <PageTitle>Campaigns</PageTitle>
      <p>
        <Link to="/campaigns/new" class="button">
          New campaign
        </Link>
      </p>
      <List
        list={list}
        empty={
          <Empty title="No campaigns yet.">
            <Link to="/campaigns/new">Create a campaign</Link>: it says where links go and what partners earn.
          </Empty>
        }
      >
        {(rows) => (
          <Table caption="Campaigns" columns={['Name', 'Commission', 'Model', 'Access', 'Created']}>
            {rows.map((c) => (
              <tr key={c.id}>
                <th scope="row">
                  <Link to={`/campaigns/${c.id}`}>{c.name}</Link>
                </th>
                <td>
                  <RuleSummary rule={c.commissionRule} />
                </td>
                <td>{c.attributionModel.replace('_', ' ')}</td>
                <td>{c.grantToAllPartners ? 'all partners' : 'invited partners'}</td>
                <td>
                  <DateTime iso={c.createdAt} />
                </td>
              </tr>
            ))}
          </Table>
        )}
      </List>
    </>
  );
}

export function AdminCampaign(props: { id: string | null }) {
  const existing = useLoad(() => (props.id ? get<Campaign>(`/campaigns/${props.id}`) : Promise.resolve(null)), [props.id]);
  return (
    <>
      <p>
        <Link to="/campaigns">← Campaigns</Link>
      </p>
      <Loaded state={existing}>{(c) => <CampaignForm campaign={c} />}</Loaded>
    </>
  );
}

/** `2026-12-01T10:00` (local, for datetime-local inputs) ↔ ISO. */
const toLocalInput = (iso: string | null | undefined) => {
  if (!iso) return '';
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
};
const fromLocalInput = (v: string) => (v ? new Date(v).toISOString() : null);

function CampaignForm(props: { campaign: Campaign | null }) {
  const c = props.campaign;
  const [rule, setRule] = useState<unknown>(c?.commissionRule ?? null);
  const act = useAction();
  const [saved, setSaved] = useState(false);
  return (
    <>
      <PageTitle>{c ? c.name : 'New campaign'}</PageTitle>
      <form
        class="stack"
        onSubmit={(e) => {
          e.preventDefault();
          const f = new FormData(e.currentTarget);
          const s = (k: string) => String(f.get(k) ?? '').trim();
          const body: Record<string, unknown> = {
            name: s('name'),
            destinationUrl: s('destinationUrl'),
            commissionRule: rule,
            attributionModel: s('attributionModel'),
            attributionWindowDays: Number(s('attributionWindowDays')),
            holdbackDays: Number(s('holdbackDays')),
            deepLinkAllowedDomains: s('deepLinkAllowedDomains')
              .split(',')
              .map((d) => d.trim())
              .filter(Boolean),
            autoApprove: f.get('autoApprove') === 'on',
            grantToAllPartners: f.get('grantToAllPartners') === 'on',
            startsAt: fromLocalInput(s('startsAt')),
            endsAt: fromLocalInput(s('endsAt')),
          };
          act.run(async () => {
            setSaved(false);
            if (c) {
              await patch(`/campaigns/${c.id}`, body);
              setSaved(true);
            } else {
              const made = await post<Campaign>('/campaigns', body);
              navigate(`/campaigns/${made.id}`, true);
            }
          });
        }}
      >
        <Field label="Name">
          <input name="name" required maxLength={200} defaultValue={c?.name} />
        </Field>
        <Field label="Destination URL" hint="Where links of this campaign send visitors.">
          <input name="destinationUrl" type="url" required defaultValue={c?.destinationUrl} placeholder="https://" />
        </Field>
        <RuleEditor initial={c?.commissionRule ?? null} onChange={setRule} />
        <div class="row">
          <Field label="Attribution model">
            <select name="attributionModel" defaultValue={c?.attributionModel ?? 'last_click'}>
              <option value="last_click">last click</option>
              <option value="first_click">first click</option>
              <option value="linear">linear</option>
              <option value="position">position</option>
            </select>
          </Field>
          <Field label="Attribution window (days)">
            <input name="attributionWindowDays" type="number" min={1} max={365} required defaultValue={String(c?.attributionWindowDays ?? 60)} />
          </Field>
          <Field label="Holdback (days)" hint="Commissions can be approved after this.">
            <input name="holdbackDays" type="number" min={0} max={365} required defaultValue={String(c?.holdbackDays ?? 0)} />
          </Field>
        </div>
        <Field label="Deep-link domains (comma-separated)" hint="Partners may link to pages on these hosts and their subdomains.">
          <input name="deepLinkAllowedDomains" defaultValue={(c?.deepLinkAllowedDomains ?? []).join(', ')} />
        </Field>
        <div class="row">
          <Field label="Starts (optional)">
            <input name="startsAt" type="datetime-local" defaultValue={toLocalInput(c?.startsAt)} />
          </Field>
          <Field label="Ends (optional)">
            <input name="endsAt" type="datetime-local" defaultValue={toLocalInput(c?.endsAt)} />
          </Field>
        </div>
        <label class="field check">
          <input name="grantToAllPartners" type="checkbox" defaultChecked={c?.grantToAllPartners ?? true} />
          <span class="label">Open to all partners</span>
        </label>
        <label class="field check">
          <input name="autoApprove" type="checkbox" defaultChecked={c?.autoApprove ?? false} />
          <span class="label">Approve commissions automatically after the holdback</span>
        </label>
        <div class="actions">
          <button type="submit" disabled={act.busy}>
            {c ? 'Save changes' : 'Create campaign'}
          </button>
        </div>
        {saved && (
          <p class="notice success" role="status">
            Saved.
          </p>
        )}
        <ErrorNotice error={act.error} />
      </form>
    </>
  );
}
