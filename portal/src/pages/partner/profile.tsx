// The partner's profile and the programs it takes part in (with its terms in force).
import type { Me } from '../../app';
import { get, type Schemas } from '../../api';
import { List, Table } from '../../components/list';
import { DateTime, Empty, Loaded, PageTitle, Status, useLoad } from '../../components/ui';
import { RuleSummary, termsRule } from '../shared/rules';

export function PartnerProfile(props: { me: Me }) {
  const id = props.me.partnerId!;
  const me = useLoad(() => get<Schemas['PartnerView']>(`/partners/${id}`), [id]);
  const programs = useLoad(() => get<{ data: Schemas['MyProgram'][] }>('/me/programs'), []);
  return (
    <>
      <PageTitle>Profile</PageTitle>
      <Loaded state={me}>
        {(p) => (
          <dl class="details">
            <dt>Name</dt>
            <dd>{p.name}</dd>
            <dt>Email</dt>
            <dd>{p.email}</dd>
            <dt>Status</dt>
            <dd>
              <Status value={p.status} />
            </dd>
            <dt>Partner since</dt>
            <dd>
              <DateTime iso={p.activatedAt ?? p.createdAt} />
            </dd>
            <dt>Partner id</dt>
            <dd>
              <code>{p.id}</code>
            </dd>
          </dl>
        )}
      </Loaded>
      <section aria-labelledby="programs-h">
        <h2 id="programs-h">Your programs</h2>
        <List list={programs} empty={<Empty title="No active programs.">The program manager grants campaigns to partners.</Empty>}>
          {(rows) => (
            <Table caption="Your programs" columns={['Campaign', 'Destination', 'Your terms']}>
              {rows.map((c) => (
                <tr key={c.id}>
                  <th scope="row">{c.name}</th>
                  <td>{c.destinationUrl}</td>
                  <td>{c.terms ? <RuleSummary rule={termsRule(c.terms)} /> : <span class="muted">the campaign's own</span>}</td>
                </tr>
              ))}
            </Table>
          )}
        </List>
      </section>
    </>
  );
}
