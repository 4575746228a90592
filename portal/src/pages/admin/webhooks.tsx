// Webhooks: endpoints (create: the signing secret is shown once), and per endpoint the
// delivery log with retries, a test fire, secret rotation and deactivation.
import { useState } from 'preact/hooks';
import { del, get, post, query, type Page, type Schemas } from '../../api';
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
  ShownOnce,
  Status,
  formValues,
  useAction,
  useLoad,
} from '../../components/ui';

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

export function AdminWebhooks() {
  const [cursor, setCursor] = useState<string | null>(null);
  const list = useLoad(() => get<Page<Schemas['EndpointView']>>(`/webhooks${query({ cursor })}`), [cursor]);
  const act = useAction();
  const [secret, setSecret] = useState<string | null>(null);
  return (
    <>
      <PageTitle>Webhooks</PageTitle>
      <section aria-labelledby="new-h" class="card">
        <h2 id="new-h">New endpoint</h2>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const form = e.currentTarget;
            const v = formValues(e);
            const events = new FormData(form).getAll('events').map(String);
            act.run(async () => {
              const r = await post<Schemas['CreatedEndpoint']>('/webhooks', { url: v.url, label: v.label || undefined, events: events.length ? events : ['*'] });
              setSecret(r.secret);
              form.reset();
              list.reload();
            });
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
          <fieldset>
            <legend>Events (none checked: all)</legend>
            <div class="checks">
              {EVENTS.map((ev) => (
                <label key={ev} class="field check">
                  <input type="checkbox" name="events" value={ev} />
                  <span class="label">{ev}</span>
                </label>
              ))}
            </div>
          </fieldset>
          <button type="submit" disabled={act.busy}>
            Add endpoint
          </button>
        </form>
        {secret && <ShownOnce label="Signing secret" value={secret} onDone={() => setSecret(null)} />}
        <ErrorNotice error={act.error} />
      </section>
      <Loaded state={list}>
        {(page) =>
          page.data.length === 0 ? (
            <Empty title="No webhook endpoints.">Add one above to receive signed events as they happen.</Empty>
          ) : (
            <>
              <table>
                <caption class="sr-only">Webhook endpoints</caption>
                <thead>
                  <tr>
                    <th scope="col">URL</th>
                    <th scope="col">Events</th>
                    <th scope="col">Active</th>
                    <th scope="col">Created</th>
                  </tr>
                </thead>
                <tbody>
                  {page.data.map((w) => (
                    <tr key={w.id}>
                      <th scope="row">
                        <Link to={`/webhooks/${w.id}`}>{w.label || w.url}</Link>
                        {w.label && <div class="muted small">{w.url}</div>}
                      </th>
                      <td>{w.events.join(', ')}</td>
                      <td>{w.active ? 'yes' : `no${w.disabledReason ? ` (${w.disabledReason})` : ''}`}</td>
                      <td>
                        <DateTime iso={w.createdAt} />
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

export function AdminWebhook(props: { id: string }) {
  const ep = useLoad(() => get<Schemas['EndpointView']>(`/webhooks/${props.id}`), [props.id]);
  const [cursor, setCursor] = useState<string | null>(null);
  const log = useLoad(() => get<Page<Schemas['DeliveryView']>>(`/webhooks/${props.id}/deliveries${query({ cursor })}`), [props.id, cursor]);
  const act = useAction();
  const [secret, setSecret] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const refresh = (msg: string) => {
    setNote(msg);
    ep.reload();
    log.reload();
  };
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
              <dd>{w.active ? 'yes' : `no${w.disabledReason ? ` (${w.disabledReason})` : ''}`}</dd>
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
      {note && (
        <p class="notice success" role="status">
          {note}
        </p>
      )}
      <ErrorNotice error={act.error} />
      <section aria-labelledby="log-h">
        <h2 id="log-h">Deliveries</h2>
        <Loaded state={log}>
          {(page) =>
            page.data.length === 0 ? (
              <Empty title="No deliveries yet.">Send a test event, or wait for the next event of a subscribed type.</Empty>
            ) : (
              <>
                <table>
                  <caption class="sr-only">Deliveries</caption>
                  <thead>
                    <tr>
                      <th scope="col">Event</th>
                      <th scope="col">Status</th>
                      <th scope="col">Attempts</th>
                      <th scope="col">Last answer</th>
                      <th scope="col">Created</th>
                      <th scope="col">Actions</th>
                    </tr>
                  </thead>
                  <tbody>
                    {page.data.map((d) => (
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
                  </tbody>
                </table>
                <Pager next={page.nextCursor} cursor={cursor} onPage={setCursor} />
              </>
            )
          }
        </Loaded>
      </section>
    </>
  );
}
