// The reporting figures the partner's dashboard and the admin's overview show, each next to
// its visible label ("Clicks", "Earnings"...) so that a person — and a test — can read them.
import type { ComponentChildren } from 'preact';
import type { Schemas } from '../../api';
import { Amounts } from '../../components/ui';

/** One figure of a `<dl class="figures">`: its label and value. */
export function Figure(props: { label: string; testId?: string; children: ComponentChildren }) {
  return (
    <div class="figure" data-testid={props.testId}>
      <dt>{props.label}</dt>
      <dd>{props.children}</dd>
    </div>
  );
}

/** "Earnings": the commissions accrued, approved and paid, per currency. */
export function EarningsFigure(props: { byStatus: Schemas['CommissionByStatus'] | null | undefined }) {
  return (
    <Figure label="Earnings" testId="figure-earnings">
      <ul class="plain">
        {(['accrued', 'approved', 'paid'] as const).map((s) => (
          <li key={s}>
            <span class="muted">{s}: </span>
            <Amounts items={props.byStatus?.[s]} />
          </li>
        ))}
      </ul>
    </Figure>
  );
}
