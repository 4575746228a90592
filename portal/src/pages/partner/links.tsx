// The partner's links: create one on a campaign the partner reaches (`GET /me/programs`),
// with an optional deep link; copy a link, show its QR code.
import { useState } from 'preact/hooks';
import type { Me } from '../../app';
import { get, post, query, routerBase, type Page, type Schemas } from '../../api';
import { QrCode } from '../../components/qr';
import { ActionForm, Field } from '../../components/form';
import { List, Table, usePagedList } from '../../components/list';
import { ActionNotices, CopyButton, DateTime, Empty, Loaded, PageTitle, useAction, useLoad } from '../../components/ui';

type Link = Schemas['LinkView'];
type Program = Schemas['MyProgram'];

export function PartnerLinks(props: { me: Me }) {
  const id = props.me.partnerId!;
  const links = usePagedList((cursor) => get<Page<Link>>(`/partners/${id}/links${query({ cursor, limit: 50 })}`), [id]);
  const programs = useLoad(() => get<{ data: Program[] }>('/me/programs'), []);
  const [qrFor, setQrFor] = useState<string | null>(null);
  const create = useAction();
  const names = new Map((programs.data?.data ?? []).map((p) => [p.id, p.name]));

  return (
    <>
      <PageTitle>Links</PageTitle>
      <section aria-labelledby="new-link-h" class="card">
        <h2 id="new-link-h">New link</h2>
        <Loaded state={programs}>
          {(p) =>
            p.data.length === 0 ? (
              <p>You have no active campaign to link to yet. When the program grants you one, it shows up here.</p>
            ) : (
              <ActionForm
                class="inline-form"
                action={create}
                submit="Create link"
                onSubmit={async (v) => {
                  await post(`/partners/${id}/links`, {
                    campaignId: v.campaignId,
                    linkKey: v.linkKey,
                    destinationUrl: v.destinationUrl || undefined,
                  });
                  links.setCursor(null);
                  links.reload();
                }}
              >
                <Field label="Campaign">
                  <select name="campaignId" required>
                    {p.data.map((c) => (
                      <option key={c.id} value={c.id}>
                        {c.name}
                      </option>
                    ))}
                  </select>
                </Field>
                <Field label="Link name" hint="3–64 letters, digits, - or _; it appears in the URL.">
                  <input name="linkKey" required pattern="[A-Za-z0-9_\-]{3,64}" minLength={3} maxLength={64} />
                </Field>
                <Field label="Deep link (optional)" hint="A page on the campaign's allowed domains.">
                  <input name="destinationUrl" type="url" placeholder="https://" />
                </Field>
              </ActionForm>
            )
          }
        </Loaded>
        <ActionNotices action={create} />
      </section>
      <section aria-labelledby="links-h">
        <h2 id="links-h">Your links</h2>
        <List list={links} empty={<Empty title="No links yet.">Create your first link above, then share it.</Empty>}>
          {(rows) => (
            <Table caption="Your links" columns={['Link', 'Campaign', 'Created', 'Share']}>
              {rows.map((l) => {
                const url = `${routerBase}/${l.linkKey}`;
                return (
                  <tr key={l.id}>
                    <th scope="row">
                      <code class="link-url">{url}</code>
                      {l.destinationUrl && <div class="muted small">→ {l.destinationUrl}</div>}
                    </th>
                    <td>{names.get(l.campaignId) ?? l.campaignId}</td>
                    <td>
                      <DateTime iso={l.createdAt} />
                    </td>
                    <td class="nowrap">
                      <CopyButton text={url} label={`Copy ${l.linkKey}`} />{' '}
                      <button type="button" class="secondary small" aria-expanded={qrFor === l.id} onClick={() => setQrFor(qrFor === l.id ? null : l.id)}>
                        QR code
                      </button>
                      {qrFor === l.id && <QrCode text={url} label={`QR code for ${url}`} />}
                    </td>
                  </tr>
                );
              })}
            </Table>
          )}
        </List>
      </section>
    </>
  );
}
