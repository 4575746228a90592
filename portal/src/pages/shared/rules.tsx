// Commission rules: a readable summary, and the editor (one row per sub-rule: trigger,
// event type, percent or fixed amount, recurrence) that builds the API's compound form.
import { useState } from 'preact/hooks';
import { formatMoney } from '../../format';
import { Field } from '../../components/form';

export interface SubRule {
  trigger: 'every' | 'first' | 'subsequent';
  eventType: string;
  type: 'percent' | 'fixed';
  value: string;
  currency: string;
  recurring: boolean;
  recurringMonths: string;
}

export function toSubRules(rule: any): SubRule[] {
  const list = Array.isArray(rule) ? rule : rule ? [rule] : [];
  return list.map((r: any) => ({
    trigger: r.trigger ?? 'every',
    eventType: r.eventType ?? '',
    type: r.type ?? 'percent',
    value: r.value != null ? String(r.value) : '',
    currency: r.currency ?? 'USD',
    recurring: r.recurring !== false,
    recurringMonths: r.recurringMonths != null ? String(r.recurringMonths) : '',
  }));
}

/** The API's input form: one object for a single plain rule, else the array. */
export function fromSubRules(rules: SubRule[]): unknown {
  const out = rules.map((r) => {
    const o: Record<string, unknown> = { trigger: r.trigger, type: r.type, value: r.value.trim() };
    if (r.eventType.trim()) o.eventType = r.eventType.trim();
    if (r.type === 'fixed') o.currency = r.currency.trim().toUpperCase();
    if (r.trigger === 'every') o.recurring = r.recurring;
    if (r.trigger === 'every' && r.recurring && r.recurringMonths.trim()) o.recurringMonths = Number(r.recurringMonths);
    return o;
  });
  return out.length === 1 ? out[0] : out;
}

function describe(r: SubRule): string {
  const amount = r.type === 'percent' ? `${r.value}%` : formatMoney(r.value, r.currency);
  const on = r.eventType ? `${r.eventType} events` : 'events';
  const when =
    r.trigger === 'first'
      ? `the first of the ${on}`
      : r.trigger === 'subsequent'
        ? `${on} after the first`
        : r.recurring
          ? `every one of the ${on}${r.recurringMonths ? ` for ${r.recurringMonths} months` : ''}`
          : `the first paying event only`;
  return `${amount} on ${when}`;
}

/** The rule a version of partner terms carries (`commissionRules`, else the flat fields). */
export function termsRule(t: { commissionRules?: unknown; commissionType?: string | null; commissionValue?: string | null; currency?: string | null; recurring?: boolean | null }): unknown {
  if (t.commissionRules) return t.commissionRules;
  if (!t.commissionType) return null;
  return { type: t.commissionType, value: t.commissionValue, currency: t.currency, recurring: t.recurring };
}

export function RuleSummary(props: { rule: unknown }) {
  const rules = toSubRules(props.rule);
  if (rules.length === 0) return <span class="muted">none</span>;
  return (
    <ul class="plain">
      {rules.map((r, i) => (
        <li key={i}>{describe(r)}</li>
      ))}
    </ul>
  );
}

const blank = (): SubRule => ({ trigger: 'every', eventType: '', type: 'percent', value: '', currency: 'USD', recurring: true, recurringMonths: '' });

export function RuleEditor(props: { initial: unknown; onChange: (rule: unknown) => void; legend?: string }) {
  const [rules, setRules] = useState<SubRule[]>(() => {
    const r = toSubRules(props.initial);
    return r.length ? r : [blank()];
  });
  const update = (next: SubRule[]) => {
    setRules(next);
    props.onChange(fromSubRules(next));
  };
  const set = (i: number, patch: Partial<SubRule>) => update(rules.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return (
    <fieldset class="rules">
      <legend>{props.legend ?? 'Commission rule'}</legend>
      <p class="hint">Several sub-rules make a compound rule: e.g. a fixed bounty on the first signup plus a percentage of every payment.</p>
      {rules.map((r, i) => (
        <fieldset class="subrule" key={i}>
          <legend>Sub-rule {i + 1}</legend>
          <Field label="Pays on"><select value={r.trigger} onChange={(e) => set(i, { trigger: e.currentTarget.value as SubRule['trigger'] })}>
              <option value="every">every event</option>
              <option value="first">the first event</option>
              <option value="subsequent">events after the first</option>
            </select></Field>
          <Field label="Event type (optional)"><input value={r.eventType} placeholder="e.g. signup" onInput={(e) => set(i, { eventType: e.currentTarget.value })} /></Field>
          <Field label="Kind"><select value={r.type} onChange={(e) => set(i, { type: e.currentTarget.value as SubRule['type'] })}>
              <option value="percent">percent of the value</option>
              <option value="fixed">fixed amount</option>
            </select></Field>
          <Field label={r.type === 'percent' ? 'Percent' : 'Amount'}><input value={r.value} required inputMode="decimal" pattern="-?[0-9]+(\.[0-9]+)?" onInput={(e) => set(i, { value: e.currentTarget.value })} /></Field>
          {r.type === 'fixed' && (
            <Field label="Currency"><input value={r.currency} required pattern="[A-Za-z]{3}" maxLength={3} onInput={(e) => set(i, { currency: e.currentTarget.value })} /></Field>
          )}
          {r.trigger === 'every' && (
            <>
              <label class="field check">
                <input type="checkbox" checked={r.recurring} onChange={(e) => set(i, { recurring: e.currentTarget.checked })} />
                <span class="label">Recurring</span>
              </label>
              {r.recurring && (
                <Field label="For months (optional)"><input value={r.recurringMonths} inputMode="numeric" pattern="[0-9]*" onInput={(e) => set(i, { recurringMonths: e.currentTarget.value })} /></Field>
              )}
            </>
          )}
          {rules.length > 1 && (
            <button type="button" class="secondary small" onClick={() => update(rules.filter((_, j) => j !== i))}>
              Remove sub-rule {i + 1}
            </button>
          )}
        </fieldset>
      ))}
      {rules.length < 10 && (
        <button type="button" class="secondary small" onClick={() => update([...rules, blank()])}>
          Add a sub-rule
        </button>
      )}
    </fieldset>
  );
}
