// The partner's links: create one on a campaign the partner reaches (`GET /me/programs`),
// with an optional deep link; copy a link, show its QR code.
import { useState } from 'preact/hooks';
import type { Me } from '../../app';
import { get, post, query, routerBase, type Page, type Schemas } from '../../api';
import { QrCode } from '../../components/qr';
import { CopyButton, DateTime, Empty, ErrorNotice, Field, Loaded, PageTitle, Pager, formValues, useAction, useLoad } from '../../components/ui';

type Link = Schemas['LinkView'];
type Program = Schemas['MyProgram'];

export function PartnerLinks(props: { me: Me }) {
  const id = props.me.partnerId!;
  const [cursor, setCursor] = useState<string | null>(null);
  const links = useLoad(() => get<Page<Link>>(`/partners/${id}/links${query({ cursor, limit: 50 })}`), [id, cursor]);
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
              <form
                class="inline-form"
                onSubmit={(e) => {
                  e.preventDefault();
                  const form = e.currentTarget;
                  const v = formValues(e);
                  create.run(async () => {
                    await post(`/partners/${id}/links`, {
                      campaignId: v.campaignId,
                      linkKey: v.linkKey,
                      destinationUrl: v.destinationUrl || undefined,
                    });
                    form.reset();
                    setCursor(null);
                    links.reload();
                  });
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
                <button type="submit" disabled={create.busy}>
                  Create link
                </button>
              </form>
            )
          }
        </Loaded>
        <ErrorNotice error={create.error} />
      </section>
      <section aria-labelledby="links-h">
        <h2 id="links-h">Your links</h2>
        <Loaded state={links}>
          {(page) =>
            page.data.length === 0 ? (
              <Empty title="No links yet.">Create your first link above, then share it.</Empty>
            ) : (
              <>
                <table>
                  <caption class="sr-only">Your links</caption>
                  <thead>
                    <tr>
                      <th scope="col">Link</th>
                      <th scope="col">Campaign</th>
                      <th scope="col">Created</th>
                      <th scope="col">Share</th>
                    </tr>
                  </thead>
                  <tbody>
                    {page.data.map((l) => {
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
                            <button
                              type="button"
                              class="secondary small"
                              aria-expanded={qrFor === l.id}
                              onClick={() => setQrFor(qrFor === l.id ? null : l.id)}
                            >
                              QR code
                            </button>
                            {qrFor === l.id && <QrCode text={url} label={`QR code for ${url}`} />}
                          </td>
                        </tr>
                      );
                    })}
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
