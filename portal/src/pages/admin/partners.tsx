// Partners: list (search by email, filter by status), invite; one partner: revoke with a
// reason, reinstate, re-send the invite, terms (per-partner commission rule).
import { useState } from 'preact/hooks';
import { del, get, post, put, query, type Page, type Schemas } from '../../api';
import {
  ConfirmButton,
  DateTime,
  Empty,
  ErrorNotice,
  Field,
  Link,
  Loaded,
  PageTitle,
  Pager,
  Status,
  formValues,
  useAction,
  useLoad,
} from '../../components/ui';
import { RuleEditor, RuleSummary, termsRule } from '../shared/rules';

type Partner = Schemas['PartnerView'];

export function AdminPartners() {
  const [status, setStatus] = useState('');
  const [email, setEmail] = useState('');
  const [cursor, setCursor] = useState<string | null>(null);
  const list = useLoad(() => get<Page<Partner>>(`/partners${query({ status, email, cursor, limit: 50 })}`), [status, email, cursor]);
  const invite = useAction();
  const [invited, setInvited] = useState<string | null>(null);
  return (
    <>
      <PageTitle>Partners</PageTitle>
      <section aria-labelledby="invite-h" class="card">
        <h2 id="invite-h">Invite a partner</h2>
        <form
          class="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            const form = e.currentTarget;
            const v = formValues(e);
            invite.run(async () => {
              await post('/partners', { email: v.email, name: v.name, sendInvite: true });
              setInvited(v.email);
              form.reset();
              list.reload();
            });
          }}
        >
          <Field label="Name">
            <input name="name" required maxLength={200} />
          </Field>
          <Field label="Email">
            <input name="email" type="email" required />
          </Field>
          <button type="submit" disabled={invite.busy}>
            Send invitation
          </button>
        </form>
        {invited && (
          <p role="status" class="notice success">
            Invitation sent to {invited}.
          </p>
        )}
        <ErrorNotice error={invite.error} />
      </section>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setEmail(formValues(e).q.trim().toLowerCase());
          setCursor(null);
        }}
      >
        <Field label="Search by email">
          <input name="q" type="search" defaultValue={email} />
        </Field>
        <button type="submit" class="secondary">
          Search
        </button>
        <label class="field inline">
          <span class="label">Status</span>
          <select
            value={status}
            onChange={(e) => {
              setStatus(e.currentTarget.value);
              setCursor(null);
            }}
          >
            <option value="">All</option>
            <option value="invited">invited</option>
            <option value="active">active</option>
            <option value="revoked">revoked</option>
          </select>
        </label>
      </form>
      <Loaded state={list}>
        {(page) =>
          page.data.length === 0 ? (
            <Empty title={email || status ? 'No partner matches.' : 'No partners yet.'}>
              {email || status ? 'Clear the search or the filter.' : 'Invite your first partner above.'}
            </Empty>
          ) : (
            <>
              <table>
                <caption class="sr-only">Partners</caption>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Email</th>
                    <th scope="col">Status</th>
                    <th scope="col">Created</th>
                  </tr>
                </thead>
                <tbody>
                  {page.data.map((p) => (
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
                </tbody>
              </table>
              <Pager next={page.nextCursor} cursor={cursor} onPage={setCursor} />
            </>
          )
        }
      </Loaded>
    </>
  );
}

export function AdminPartner(props: { id: string }) {
  const partner = useLoad(() => get<Partner>(`/partners/${props.id}`), [props.id]);
  const terms = useLoad(() => get<{ terms: Schemas['PartnerTerms'][] }>(`/partners/${props.id}/commission-snapshot`), [props.id]);
  const act = useAction();
  const [note, setNote] = useState<string | null>(null);
  const [rule, setRule] = useState<unknown>(null);
  const [editing, setEditing] = useState(false);
  const done = (msg: string) => {
    setNote(msg);
    partner.reload();
    terms.reload();
  };
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
      {note && (
        <p class="notice success" role="status">
          {note}
        </p>
      )}
      <ErrorNotice error={act.error} />
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
      <ErrorNotice error={act.error} />
      <Loaded state={list}>
        {(l) =>
          l.data.length === 0 ? (
            <Empty title="No campaigns yet.">
              <Link to="/campaigns/new">Create a campaign</Link> to grant it.
            </Empty>
          ) : (
            <table>
              <caption class="sr-only">Campaigns and this partner's access</caption>
              <thead>
                <tr>
                  <th scope="col">Campaign</th>
                  <th scope="col">Access</th>
                  <th scope="col">Since</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {l.data.map((c) => (
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
              </tbody>
            </table>
          )
        }
      </Loaded>
    </section>
  );
}
