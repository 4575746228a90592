// Partners: list (search by email, filter by status), invite; one partner: revoke with a
// reason, reinstate, re-send the invite, terms (per-partner commission rule).
import { useState } from 'preact/hooks';
import { del, get, post, put, query, type Page, type Schemas } from '../../api';
import { ActionForm, Field, FilterSelect } from '../../components/form';
import { List, Table, usePagedList } from '../../components/list';
import { ActionNotices, ConfirmButton, DateTime, Empty, Link, Loaded, PageTitle, Status, useAction, useLoad } from '../../components/ui';
import { RuleEditor, RuleSummary, termsRule } from '../shared/rules';

type Partner = Schemas['PartnerView'];

export function AdminPartners() {
  const [status, setStatus] = useState('');
  const [email, setEmail] = useState('');
  const list = usePagedList((cursor) => get<Page<Partner>>(`/partners${query({ status, email, cursor, limit: 50 })}`), [status, email]);
  const invite = useAction();
  const filtered = email || status;
  return (
    <>
      <PageTitle>Partners</PageTitle>
      <section aria-labelledby="invite-h" class="card">
        <h2 id="invite-h">Invite a partner</h2>
        <ActionForm
          class="inline-form"
          action={invite}
          submit="Send invitation"
          onSubmit={async (v) => {
            await post('/partners', { email: v.email, name: v.name, sendInvite: true });
            invite.done(`Invitation sent to ${v.email}.`, list);
          }}
        >
          <Field label="Name">
            <input name="name" required maxLength={200} />
          </Field>
          <Field label="Email">
            <input name="email" type="email" required />
          </Field>
        </ActionForm>
        <ActionNotices action={invite} />
      </section>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setEmail(String(new FormData(e.currentTarget).get('q')).trim().toLowerCase());
          list.setCursor(null);
        }}
      >
        <Field label="Search by email">
          <input name="q" type="search" defaultValue={email} />
        </Field>
        <button type="submit" class="secondary">
          Search
        </button>
        <FilterSelect
          label="Status"
          value={status}
          all="All"
          options={['invited', 'active', 'revoked']}
          onChange={(s) => {
            setStatus(s);
            list.setCursor(null);
          }}
        />
      </form>
      <List
        list={list}
        empty={
          <Empty title={filtered ? 'No partner matches.' : 'No partners yet.'}>
            {filtered ? 'Clear the search or the filter.' : 'Invite your first partner above.'}
          </Empty>
        }
      >
        {(rows) => (
          <Table caption="Partners" columns={['Name', 'Email', 'Status', 'Created']}>
            {rows.map((p) => (
              <tr key={p.id}>
                <th scope="row">
                  <Link to={`/partners/${p.id}`}>{p.name}</Link>
                </th>
                <td>{p.email}</td>
                <td>
                  <Status value={p.status} />
                </td>
                <td>
                  <DateTime iso={p.createdAt} />
                </td>
              </tr>
            ))}
          </Table>
        )}
      </List>
    </>
  );
}

export function AdminPartner(props: { id: string }) {
  const partner = useLoad(() => get<Partner>(`/partners/${props.id}`), [props.id]);
  const terms = useLoad(() => get<{ terms: Schemas['PartnerTerms'][] }>(`/partners/${props.id}/commission-snapshot`), [props.id]);
  const act = useAction();
  const [rule, setRule] = useState<unknown>(null);
  const [editing, setEditing] = useState(false);
  const done = (msg: string) => act.done(msg, partner, terms);
  return (
    <>
      <p>
        <Link to="/partners">← Partners</Link>
      </p>
      <Loaded state={partner}>
        {(p) => (
          <>
            <PageTitle>{p.name}</PageTitle>
            <dl class="details">
              <dt>Email</dt>
              <dd>{p.email}</dd>
              <dt>Status</dt>
              <dd>
                <Status value={p.status} />
                {p.revokeReason ? <span class="muted"> — {p.revokeReason}</span> : null}
              </dd>
              <dt>Created</dt>
              <dd>
                <DateTime iso={p.createdAt} />
              </dd>
              <dt>Activated</dt>
              <dd>
                <DateTime iso={p.activatedAt} />
              </dd>
            </dl>
            <div class="actions">
              {p.status === 'invited' && (
                <button type="button" class="secondary" onClick={() => act.run(async () => (await post(`/partners/${p.id}/invite`), done('Invitation sent again.')))}>
                  Re-send invitation
                </button>
              )}
              {p.status !== 'revoked' ? (
                <ConfirmButton
                  label="Revoke partner"
                  title={`Revoke ${p.name}?`}
                  message={<p>Their sessions and API keys end at once and their links stop earning.</p>}
                  fields={
                    <Field label="Reason (shown to the partner)">
                      <input name="reason" maxLength={500} />
                    </Field>
                  }
                  danger
                  confirmLabel="Revoke"
                  onConfirm={(v) => act.run(async () => (await post(`/partners/${p.id}/revoke`, { reason: v.reason || undefined }), done('Partner revoked.')))}
                />
              ) : (
                <ConfirmButton
                  label="Reinstate partner"
                  title={`Reinstate ${p.name}?`}
                  message={<p>They can sign in again and their links earn again.</p>}
                  confirmLabel="Reinstate"
                  onConfirm={() => act.run(async () => (await post(`/partners/${p.id}/reinstate`), done('Partner reinstated.')))}
                />
              )}
            </div>
          </>
        )}
      </Loaded>
      <ActionNotices action={act} />
      <PartnerPrograms id={props.id} />
      <section aria-labelledby="terms-h">
        <h2 id="terms-h">Terms</h2>
        <p class="muted">Terms replace the campaigns' own rules for this partner, from now on (earlier commissions keep their price).</p>
        <Loaded state={terms}>
          {(t) => {
            const current = t.terms[0];
            const inForce = current && (current.commissionRules || current.commissionType);
            return (
              <>
                {inForce ? (
                  <div>
                    In force since <DateTime iso={current.validFrom} />:{' '}
                    <RuleSummary rule={termsRule(current)} />
                  </div>
                ) : (
                  <p>No terms: the campaigns' own rules apply.</p>
                )}
                {editing ? (
                  <form
                    onSubmit={(e) => {
                      e.preventDefault();
                      act.run(async () => {
                        await put(`/partners/${props.id}/commission-snapshot`, { commissionRules: rule });
                        setEditing(false);
                        done('Terms saved.');
                      });
                    }}
                  >
                    <RuleEditor initial={null} onChange={setRule} legend="Terms for all campaigns" />
                    <div class="actions">
                      <button type="button" class="secondary" onClick={() => setEditing(false)}>
                        Cancel
                      </button>
                      <button type="submit">Save terms</button>
                    </div>
                  </form>
                ) : (
                  <div class="actions">
                    <button type="button" class="secondary" onClick={() => setEditing(true)}>
                      Set terms
                    </button>
                    {inForce && (
                      <ConfirmButton
                        label="End terms"
                        title="End these terms?"
                        message={<p>From now on the campaigns' own rules apply to this partner.</p>}
                        danger
                        onConfirm={() => act.run(async () => (await del(`/partners/${props.id}/commission-snapshot`), done('Terms ended.')))}
                      />
                    )}
                  </div>
                )}
              </>
            );
          }}
        </Loaded>
      </section>
    </>
  );
}

/** The campaigns the partner reaches (program access): grant, remove (after confirming). */
function PartnerPrograms(props: { id: string }) {
  const list = useLoad(() => get<{ data: Schemas['PartnerCampaign'][] }>(`/partners/${props.id}/campaigns`), [props.id]);
  const act = useAction();
  return (
    <section aria-labelledby="programs-h">
      <h2 id="programs-h">Programs</h2>
      <ActionNotices action={act} />
      <List
        list={list}
        empty={
          <Empty title="No campaigns yet.">
            <Link to="/campaigns/new">Create a campaign</Link> to grant it.
          </Empty>
        }
      >
        {(rows) => (
          <Table caption="Campaigns and this partner's access" columns={['Campaign', 'Access', 'Since', 'Actions']}>
            {rows.map((c) => (
              <tr key={c.id}>
                <th scope="row">
                  <Link to={`/campaigns/${c.id}`}>{c.name}</Link>
                </th>
                <td>{c.granted ? `granted (${c.grantSource ?? 'admin'})` : c.grantToAllPartners ? 'not granted (removed)' : 'not granted (private)'}</td>
                <td>
                  <DateTime iso={c.grantedAt} />
                </td>
                <td>
                  {c.granted ? (
                    <ConfirmButton
                      label="Remove"
                      title={`Remove access to ${c.name}?`}
                      message={<p>The partner can no longer create links on it; existing links keep working and earning.</p>}
                      danger
                      onConfirm={() => act.run(async () => (await del(`/partners/${props.id}/programs/${c.id}`), list.reload()))}
                    />
                  ) : (
                    <button type="button" class="secondary small" onClick={() => act.run(async () => (await post(`/partners/${props.id}/campaigns`, { campaignIds: [c.id] }), list.reload()))}>
                      Grant
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </Table>
        )}
      </List>
    </section>
  );
}
