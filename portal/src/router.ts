// A small router over the History API: paths are relative to where the portal lives
// (`/t/<slug>/` or `/`), so deep links reload to the same page (the gateway answers the
// app's shell for every portal path).
import { useEffect, useState } from 'preact/hooks';
import { portalBase } from './api';

/** The current page's path inside the portal, always starting with `/`. */
export function currentPath(): string {
  const p = location.pathname;
  const rest = p.startsWith(portalBase) ? p.slice(portalBase.length) : p.replace(/^\//, '');
  return '/' + rest;
}

const listeners = new Set<() => void>();
window.addEventListener('popstate', () => listeners.forEach((l) => l()));

/** `to` inside the portal (`/partners?status=active`) as a URL path. */
export function href(to: string): string {
  return portalBase + to.replace(/^\//, '');
}

export function navigate(to: string, replace = false): void {
  const url = href(to);
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  listeners.forEach((l) => l());
}

/** Re-renders on navigation; returns `[path, search params]`. */
export function useLocation(): [string, URLSearchParams] {
  const [, setTick] = useState(0);
  useEffect(() => {
    const l = () => setTick((n) => n + 1);
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
  return [currentPath(), new URLSearchParams(location.search)];
}

/** Matches `/partners/:id` against a path: the parameters, or null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const a = pattern.split('/').filter(Boolean);
  const b = path.split('/').filter(Boolean);
  if (a.length !== b.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < a.length; i++) {
    if (a[i].startsWith(':')) params[a[i].slice(1)] = decodeURIComponent(b[i]);
    else if (a[i] !== b[i]) return null;
  }
  return params;
}
