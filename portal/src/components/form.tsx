// Form controls as every form shows them: a labelled control, a group of check boxes, a list
// filter, and the form whose submission is an action (create an admin, a partner, a key, a link).
import { cloneElement, isValidElement, type ComponentChildren } from 'preact';
import { useRef } from 'preact/hooks';
import type { Action } from './ui';

let fieldIds = 0;

/**
 * A labelled control: `<label for>` names the control (and nothing else), the hint is its
 * description (`aria-describedby`).
 */
export function Field(props: { label: string; hint?: string; children: ComponentChildren }) {
  const id = useRef(`f${++fieldIds}`).current;
  const child = isValidElement(props.children)
    ? cloneElement(props.children as any, { id, 'aria-describedby': props.hint ? `${id}-hint` : undefined })
    : props.children;
  return (
    <div class="field">
      <label class="label" for={id}>
        {props.label}
      </label>
      {child}
      {props.hint && (
        <span class="hint" id={`${id}-hint`}>
          {props.hint}
        </span>
      )}
    </div>
  );
}

/** A group of check boxes of one `name`, one per value (checked ones are sent, repeated). */
export function CheckGroup(props: { legend: string; name: string; values: readonly string[] }) {
  return (
    <fieldset>
      <legend>{props.legend}</legend>
      <div class="checks">
        {props.values.map((v) => (
          <label key={v} class="field check">
            <input type="checkbox" name={props.name} value={v} />
            <span class="label">{v}</span>
          </label>
        ))}
      </div>
    </fieldset>
  );
}

/** A list's filter: a labelled select of `options` (value, or `[value, text]`); `all` labels "" (no filter). */
export function FilterSelect(props: {
  label: string;
  value: string;
  onChange: (value: string) => void;
  all: string;
  options: Iterable<string | readonly [string, string]>;
}) {
  return (
    <label class="field inline">
      <span class="label">{props.label}</span>
      <select value={props.value} onChange={(e) => props.onChange(e.currentTarget.value)}>
        <option value="">{props.all}</option>
        {Array.from(props.options, (o) => {
          const [value, text] = typeof o === 'string' ? [o, o] : o;
          return (
            <option key={value} value={value}>
              {text}
            </option>
          );
        })}
      </select>
    </label>
  );
}

/**
 * A form whose submission is an action: `onSubmit` gets the form's values (and its
 * `FormData`, for repeated names) and runs through `action` — the page shows its error —,
 * and the form is cleared once it succeeded. Its submit button, `submit`, comes last and is
 * disabled while the action runs.
 */
export function ActionForm(props: {
  action: Action;
  submit: string;
  onSubmit: (values: Record<string, string>, data: FormData) => Promise<unknown>;
  class?: string;
  children: ComponentChildren;
}) {
  return (
    <form
      class={props.class}
      onSubmit={(e) => {
        e.preventDefault();
        const form = e.currentTarget;
        const data = new FormData(form);
        const values = Object.fromEntries(data) as Record<string, string>;
        props.action.run(async () => {
          await props.onSubmit(values, data);
          form.reset();
        });
      }}
    >
      {props.children}
      <button type="submit" disabled={props.action.busy}>
        {props.submit}
      </button>
    </form>
  );
}
