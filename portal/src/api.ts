// The API on the portal's own origin, signed in by the `op_session` cookie (never a stored
// key). Where the portal lives says where the API is: `/t/<slug>/` → `/api/t/<slug>`,
// `/` (self-hosted) → `/api`.
import type { components } from '../../sdk/js/src/generated/openapi';

export type Schemas = components['schemas'];

const basePath = new URL(document.baseURI).pathname;
const hosted = basePath.match(/^\/t\/([a-z0-9][a-z0-9-]{1,39})\/$/);
/** The tenant's slug when hosted, else null. */
export const slug: string | null = hosted ? hosted[1] : null;
/** Where the portal lives: `/t/<slug>/` or `/`. */
export const portalBase = hosted ? basePath : '/';
export const apiBase = slug ? `/api/t/${slug}` : '/api';
/** The click router's base for this tenant (absolute). */
export const routerBase = `${location.origin}${slug ? `/r/${slug}` : '/r'}`;

/** An answer of the API that is not a success: its `error` code and `detail` text. */
export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    public detail: string,
    public body: Record<string, unknown> = {},
  ) {
    super(detail || code || `HTTP ${status}`);
  }
}

type Listener = () => void;
const onUnauthorized = new Set<Listener>();
/** Called when a request answers 401 (the session ended): the app goes to sign-in. */
export function whenSignedOut(l: Listener): () => void {
  onUnauthorized.add(l);
  return () => onUnauthorized.delete(l);
}

export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, credentials: 'same-origin', headers: { accept: 'application/json' } };
  if (body !== undefined) {
    init.headers = { ...init.headers, 'content-type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  let res: Response;
  try {
    res = await fetch(apiBase + path, init);
  } catch {
    throw new ApiError(0, 'network', 'The server could not be reached. Check your connection and try again.');
  }
  const text = await res.text();
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const err = new ApiError(
      res.status,
      json?.error ?? 'http_error',
      json?.detail ?? `The server answered ${res.status}.`,
      json ?? {},
    );
    if (res.status === 401 && !path.startsWith('/auth/')) onUnauthorized.forEach((l) => l());
    throw err;
  }
  return json as T;
}

export const get = <T = any>(path: string) => api<T>('GET', path);
export const post = <T = any>(path: string, body: unknown = {}) => api<T>('POST', path, body);
export const patch = <T = any>(path: string, body: unknown) => api<T>('PATCH', path, body);
export const put = <T = any>(path: string, body: unknown) => api<T>('PUT', path, body);
export const del = <T = any>(path: string) => api<T>('DELETE', path);

/** `?a=1&b=2` from the defined, non-empty values. */
export function query(params: Record<string, string | number | boolean | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** A page of a list: `{data, nextCursor}`. */
export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}
