// Webhooks: endpoints (create: the signing secret is shown once), and per endpoint the
// delivery log with retries, a test fire, secret rotation and deactivation.
import { useState } from 'preact/hooks';
import { del, get, post, query, type Page, type Schemas } from '../../api';
import { ActionForm, CheckGroup, Field } from '../../components/form';
import { List, Table, usePagedList } from '../../components/list';
import { ActionNotices, ConfirmButton, DateTime, Empty, Link, Loaded, PageTitle, ShownOnce, Status, useAction, useLoad } from '../../components/ui';

const EVENTS = [
  'attribution.created',
  'commission.accrued',
  'commission.approved',
  'commission.paid',
  'commission.reversed',
  'partner.created',
  'partner.activated',
  'partner.revoked',
  'payout.created',
];

/** Whether an endpoint receives events, and why not. */
const activeText = (w: Schemas['EndpointView']) => (w.active ? 'yes' : `no${w.disabledReason ? ` (${w.disabledReason})` : ''}`);

export function AdminWebhooks() {
  const list = usePagedList((cursor) => get<Page<Schemas['EndpointView']>>(`/webhooks${query({ cursor })}`), []);
  const act = useAction();
  const [secret, setSecret] = useState<string | null>(null);
  return (
    <>
      <PageTitle>Webhooks</PageTitle>
      <section aria-labelledby="new-h" class="card">
        <h2 id="new-h">New endpoint</h2>
        <ActionForm
          action={act}
          submit="Add endpoint"
          onSubmit={async (v, data) => {
            const events = data.getAll('events').map(String);
            const r = await post<Schemas['CreatedEndpoint']>('/webhooks', { url: v.url, label: v.label || undefined, events: events.length ? events : ['*'] });
            setSecret(r.secret);
            list.reload();
          }}
        >
          <div class="row">
            <Field label="URL">
              <input name="url" type="url" required placeholder="https://" />
            </Field>
            <Field label="Label (optional)">
              <input name="label" maxLength={100} />
            </Field>
          </div>
          <CheckGroup legend="Events (none checked: all)" name="events" values={EVENTS} />
        </ActionForm>
        {secret && <ShownOnce label="Signing secret" value={secret} onDone={() => setSecret(null)} />}
        <ActionNotices action={act} />
      </section>
      <List list={list} empty={<Empty title="No webhook endpoints.">Add one above to receive signed events as they happen.</Empty>}>
        {(rows) => (
          <Table caption="Webhook endpoints" columns={['URL', 'Events', 'Active', 'Created']}>
            {rows.map((w) => (
              <tr key={w.id}>
                <th scope="row">
                  <Link to={`/webhooks/${w.id}`}>{w.label || w.url}</Link>
                  {w.label && <div class="muted small">{w.url}</div>}
                </th>
                <td>{w.events.join(', ')}</td>
                <td>{activeText(w)}</td>
                <td>
                  <DateTime iso={w.createdAt} />
                </td>
              </tr>
            ))}
          </Table>
        )}
      </List>
    </>
  );
}

export function AdminWebhook(props: { id: string }) {
  const ep = useLoad(() => get<Schemas['EndpointView']>(`/webhooks/${props.id}`), [props.id]);
  const log = usePagedList((cursor) => get<Page<Schemas['DeliveryView']>>(`/webhooks/${props.id}/deliveries${query({ cursor })}`), [props.id]);
  const act = useAction();
  const [secret, setSecret] = useState<string | null>(null);
  const refresh = (msg: string) => act.done(msg, ep, log);
  return (
    <>
      <p>
        <Link to="/webhooks">← Webhooks</Link>
      </p>
      <Loaded state={ep}>
        {(w) => (
          <>
            <PageTitle>{w.label || 'Webhook endpoint'}</PageTitle>
            <dl class="details">
              <dt>URL</dt>
              <dd>
                <code>{w.url}</code>
              </dd>
              <dt>Events</dt>
              <dd>{w.events.join(', ')}</dd>
              <dt>Active</dt>
              <dd>{activeText(w)}</dd>
            </dl>
            <div class="actions">
              <button type="button" class="secondary" disabled={!w.active} onClick={() => act.run(async () => (await post(`/webhooks/${w.id}/test`), refresh('Test event sent.')))}>
                Send a test event
              </button>
              <ConfirmButton
                label="Rotate secret"
                title="Rotate the signing secret?"
                message={<p>For 24 hours requests are signed with both the old and the new secret, so receivers can switch over.</p>}
                onConfirm={() =>
                  act.run(async () => {
                    const r = await post<{ secret: string }>(`/webhooks/${w.id}/rotate-secret`);
                    setSecret(r.secret);
                  })
                }
              />
              {w.active && (
                <ConfirmButton
                  label="Deactivate"
                  title="Deactivate this endpoint?"
                  message={<p>It stops receiving events. Its delivery log stays readable.</p>}
                  danger
                  onConfirm={() => act.run(async () => (await del(`/webhooks/${w.id}`), refresh('Endpoint deactivated.')))}
                />
              )}
            </div>
          </>
        )}
      </Loaded>
      {secret && <ShownOnce label="New signing secret" value={secret} onDone={() => setSecret(null)} />}
      <ActionNotices action={act} />
      <section aria-labelledby="log-h">
        <h2 id="log-h">Deliveries</h2>
        <List list={log} empty={<Empty title="No deliveries yet.">Send a test event, or wait for the next event of a subscribed type.</Empty>}>
          {(rows) => (
            <Table caption="Deliveries" columns={['Event', 'Status', 'Attempts', 'Last answer', 'Created', 'Actions']}>
              {rows.map((d) => (
                <tr key={d.id}>
                  <th scope="row">
                    {d.eventType}
                    <div class="muted small">{d.eventId}</div>
                  </th>
                  <td>
                    <Status value={d.status} />
                  </td>
                  <td>{d.attempts}</td>
                  <td>{d.httpStatus ?? d.error ?? '—'}</td>
                  <td>
                    <DateTime iso={d.createdAt} />
                  </td>
                  <td>
                    <button type="button" class="secondary small" onClick={() => act.run(async () => (await post(`/webhooks/${props.id}/deliveries/${d.id}/retry`), refresh('Delivery retried.')))}>
                      Retry
                    </button>
                  </td>
                </tr>
              ))}
            </Table>
          )}
        </List>
      </section>
    </>
  );
}
