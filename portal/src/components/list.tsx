// Lists, as every list page shows them: a page of rows loaded with the API's cursors, its
// states (loading, error, empty) and the table of its rows with the pager under it.
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { Loaded, useLoad, type LoadState } from './ui';

/** Rows of a list and, when the list pages, the cursor of the next page. */
export interface Rows<T> {
  data: T[];
  nextCursor?: string | null;
}

/** Where a paged list is: the cursor of the page shown (null: the first) and how to move. */
export interface Paging {
  cursor: string | null;
  setCursor: (cursor: string | null) => void;
}

/** A paged list's state: the page loaded, where it is, `reload`. */
export type PagedList<P> = LoadState<P> & Paging & { reload: () => void };

/**
 * `load(cursor)` for the page at `cursor`, loaded again when `deps` or the cursor change.
 * A filter that changes the list sets the cursor back to null itself (`setCursor(null)`).
 */
export function usePagedList<P>(load: (cursor: string | null) => Promise<P>, deps: unknown[]): PagedList<P> {
  const [cursor, setCursor] = useState<string | null>(null);
  const state = useLoad(() => load(cursor), [...deps, cursor]);
  return { ...state, cursor, setCursor };
}

/** "Next page" over the API's cursors; "First page" goes back to the start. */
export function Pager(props: { next: string | null | undefined; cursor: string | null; onPage: (cursor: string | null) => void }) {
  if (!props.next && !props.cursor) return null;
  return (
    <nav class="pager" aria-label="Pages">
      <button type="button" class="secondary" disabled={!props.cursor} onClick={() => props.onPage(null)}>
        First page
      </button>
      <button type="button" class="secondary" disabled={!props.next} onClick={() => props.onPage(props.next ?? null)}>
        Next page
      </button>
    </nav>
  );
}

/** A page's rows (`children`), or `empty` when there are none; with `paging`, the pager under them. */
export function ListRows<T>(props: { page: Rows<T>; paging?: Paging; empty: ComponentChildren; children: (rows: T[]) => ComponentChildren }) {
  const { page, paging } = props;
  if (page.data.length === 0) return <>{props.empty}</>;
  return (
    <>
      {props.children(page.data)}
      {paging && <Pager next={page.nextCursor} cursor={paging.cursor} onPage={paging.setCursor} />}
    </>
  );
}

/**
 * A loaded list: "Loading…", the error (or `unavailable` when the route answers 404), `empty`,
 * or its rows — and the pager when `list` comes from `usePagedList`.
 */
export function List<T>(props: {
  list: LoadState<Rows<T>> & Partial<Paging>;
  empty: ComponentChildren;
  unavailable?: ComponentChildren;
  children: (rows: T[]) => ComponentChildren;
}) {
  const { list } = props;
  return (
    <Loaded state={list} unavailable={props.unavailable}>
      {(page) => (
        <ListRows page={page} paging={list.setCursor && (list as Paging)} empty={props.empty}>
          {props.children}
        </ListRows>
      )}
    </Loaded>
  );
}

/** A column heading: its text, or its content and class (`num` right-aligns amounts). */
export type Column = string | { label: ComponentChildren; class?: string };

/**
 * A table: its caption (for screen readers only unless `showCaption`; none without
 * `caption`), a heading per column (falsy entries are left out), `children` as its rows.
 */
export function Table(props: { caption?: string; showCaption?: boolean; columns: (Column | false | null | undefined)[]; children: ComponentChildren }) {
  return (
    <table>
      {props.caption && <caption class={props.showCaption ? undefined : 'sr-only'}>{props.caption}</caption>}
      <thead>
        <tr>
          {props.columns.map(
            (c, i) =>
              c && (
                <th key={i} scope="col" class={typeof c === 'string' ? undefined : c.class}>
                  {typeof c === 'string' ? c : c.label}
                </th>
              ),
          )}
        </tr>
      </thead>
      <tbody>{props.children}</tbody>
    </table>
  );
}
