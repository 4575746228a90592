// Small building blocks every page uses: loading and error states, money and dates, empty
// states, confirmation of destructive actions, copy to clipboard. Lists are in `list.tsx`,
// form controls in `form.tsx`.
import type { ComponentChildren, JSX } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api';
import { formatDate, formatMoney } from '../format';
import { href, navigate } from '../router';

/** What `useLoad` has: the data once loaded (kept while loading again), or the error. */
export interface LoadState<T> {
  data?: T;
  error?: ApiError;
  loading: boolean;
}

/** Loads `load()` on mount and whenever `deps` change; `reload` runs it again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [state, setState] = useState<LoadState<T>>({ loading: true });
  const seq = useRef(0);
  const run = useCallback(() => {
    const n = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => n === seq.current && setState({ data, loading: false }),
      (error) => n === seq.current && setState({ error: asApiError(error), loading: false }),
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  useEffect(run, [run]);
  return { ...state, reload: run };
}

export function asApiError(e: unknown): ApiError {
  return e instanceof ApiError ? e : new ApiError(0, 'client_error', e instanceof Error ? e.message : String(e));
}

/**
 * Runs an action, keeping its error (shown with its `detail`) and a busy flag. `done` says
 * what an action did (`Partner revoked.`: the note `ActionNotices` shows until the next one)
 * and reloads what it changed.
 */
export function useAction() {
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState<string | null>(null);
  const run = useCallback(async <T,>(f: () => Promise<T>): Promise<T | undefined> => {
    setBusy(true);
    setError(null);
    try {
      return await f();
    } catch (e) {
      setError(asApiError(e));
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  const done = (message: string, ...changed: { reload: () => void }[]) => {
    setNote(message);
    changed.forEach((c) => c.reload());
  };
  return { error, busy, note, run, done };
}

/** An action's state and runner, as `useAction` gives them. */
export type Action = ReturnType<typeof useAction>;

export function Link(props: { to: string; children: ComponentChildren; class?: string; 'aria-current'?: 'page' | undefined }) {
  return (
    <a
      href={href(props.to)}
      class={props.class}
      aria-current={props['aria-current']}
      onClick={(e) => {
        if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(props.to);
      }}
    >
      {props.children}
    </a>
  );
}

/** A page's heading: focused on arrival, so screen readers and keyboards start there. */
export function PageTitle(props: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    ref.current?.focus();
    document.title = `${ref.current?.textContent ?? ''} · OpenPartner`;
  }, []);
  return (
    <h1 ref={ref} tabIndex={-1}>
      {props.children}
    </h1>
  );
}

export function ErrorNotice(props: { error: ApiError | null | undefined }) {
  if (!props.error) return null;
  const e = props.error;
  const items = Array.isArray((e.body as any)?.errors) ? ((e.body as any).errors as any[]) : [];
  return (
    <div class="notice error" role="alert">
      <strong>{e.detail || 'Something went wrong.'}</strong>
      {e.code && e.status ? <span class="code"> ({e.code})</span> : null}
      {items.length > 0 && (
        <ul>
          {items.map((x) => (
            <li key={x.id}>
              {x.id}: {x.detail ?? x.error}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** An action's outcome: what it last did (`done`, announced politely), then its error. */
export function ActionNotices(props: { action: Action }) {
  const { note, error } = props.action;
  return (
    <>
      {note && (
        <p class="notice success" role="status">
          {note}
        </p>
      )}
      <ErrorNotice error={error} />
    </>
  );
}

export function Loading() {
  return (
    <p class="muted" role="status">
      Loading…
    </p>
  );
}

/**
 * What to show while loading, on error, or the content. With `unavailable`, a `404` shows
 * it instead of the error (a route this server does not have yet, e.g. reporting's).
 */
export function Loaded<T>(props: { state: LoadState<T>; unavailable?: ComponentChildren; children: (data: T) => ComponentChildren }) {
  const { state } = props;
  if (state.error) return state.error.status === 404 && props.unavailable ? <>{props.unavailable}</> : <ErrorNotice error={state.error} />;
  if (state.data === undefined) return <Loading />;
  return <>{props.children(state.data)}</>;
}

export function Empty(props: { title: string; children?: ComponentChildren }) {
  return (
    <div class="empty">
      <p>
        <strong>{props.title}</strong>
      </p>
      {props.children && <p>{props.children}</p>}
    </div>
  );
}

export function Money(props: { amount: string | null | undefined; currency: string }) {
  return <span class="money">{formatMoney(props.amount, props.currency)}</span>;
}

/** `[{currency, amount}]` as a list of amounts, or `—`. */
export function Amounts(props: { items: { currency: string; amount: string }[] | null | undefined }) {
  const items = props.items ?? [];
  if (items.length === 0) return <span class="money">—</span>;
  return (
    <span class="amounts">
      {items.map((m, i) => (
        <span key={m.currency}>
          {i > 0 ? ', ' : ''}
          <Money amount={m.amount} currency={m.currency} />
        </span>
      ))}
    </span>
  );
}

/** A time in the viewer's zone, UTC on hover. */
export function DateTime(props: { iso: string | null | undefined }) {
  const f = formatDate(props.iso);
  if (!props.iso) return <span>—</span>;
  return (
    <time dateTime={props.iso} title={f.utc}>
      {f.local}
    </time>
  );
}

export function Status(props: { value: string }) {
  return <span class={`status status-${props.value}`}>{props.value}</span>;
}

/**
 * A button that asks first (a modal dialog: Escape or "Cancel" back out). `fields` adds
 * inputs to the dialog (e.g. a reason); the confirmed action gets the form's values.
 */
export function ConfirmButton(props: {
  label: string;
  title: string;
  message: ComponentChildren;
  confirmLabel?: string;
  danger?: boolean;
  disabled?: boolean;
  fields?: ComponentChildren;
  onConfirm: (values: Record<string, string>) => void | Promise<void>;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const id = useRef(`dlg-${Math.random().toString(36).slice(2)}`).current;
  const submit = async (e: JSX.TargetedEvent<HTMLFormElement>) => {
    e.preventDefault();
    const values = Object.fromEntries(new FormData(e.currentTarget).entries()) as Record<string, string>;
    dialog.current?.close();
    await props.onConfirm(values);
  };
  return (
    <>
      <button type="button" class={props.danger ? 'danger' : ''} disabled={props.disabled} onClick={() => dialog.current?.showModal()}>
        {props.label}
      </button>
      <dialog ref={dialog} aria-labelledby={`${id}-t`}>
        <form method="dialog" onSubmit={submit}>
          <h2 id={`${id}-t`}>{props.title}</h2>
          <div>{props.message}</div>
          {props.fields}
          <div class="actions">
            <button type="button" class="secondary" onClick={() => dialog.current?.close()}>
              Cancel
            </button>
            <button type="submit" class={props.danger ? 'danger' : ''}>
              {props.confirmLabel ?? props.label}
            </button>
          </div>
        </form>
      </dialog>
    </>
  );
}

export function CopyButton(props: { text: string; label?: string }) {
  const [done, setDone] = useState(false);
  return (
    <>
      <button
        type="button"
        class="secondary small"
        onClick={async () => {
          try {
            await navigator.clipboard.writeText(props.text);
            setDone(true);
            setTimeout(() => setDone(false), 2000);
          } catch {
            window.prompt('Copy this:', props.text);
          }
        }}
      >
        {props.label ?? 'Copy'}
      </button>
      <span class="sr-live" role="status" aria-live="polite">
        {done ? 'Copied' : ''}
      </span>
    </>
  );
}

/** A secret shown once (an API key, a webhook signing secret). */
export function ShownOnce(props: { label: string; value: string; onDone: () => void }) {
  return (
    <div class="notice success" role="status">
      <p>
        <strong>{props.label}</strong> — copy it now: it is shown only once.
      </p>
      <p>
        <code class="secret" data-testid="secret">
          {props.value}
        </code>{' '}
        <CopyButton text={props.value} />
      </p>
      <button type="button" class="secondary small" onClick={props.onDone}>
        I have stored it
      </button>
    </div>
  );
}
