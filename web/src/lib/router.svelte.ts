/**
 * A tiny client-side router on top of `history.pushState`.
 *
 * The server answers `/`, `/admin` and `/admin/*` with the app and redirects any other path to
 * `/?path=<path>`; `start()` turns that back into the real URL so deep links work.
 */

/** The current location, reactive. */
export const route = $state({ path: location.pathname, query: new URLSearchParams(location.search) });

function sync(): void {
  route.path = location.pathname;
  route.query = new URLSearchParams(location.search);
}

/** Reads a `?path=` left by the server's redirect, and follows back/forward. */
export function start(): void {
  const wanted = new URLSearchParams(location.search).get('path');
  if (wanted && wanted.startsWith('/') && !wanted.startsWith('//')) {
    history.replaceState(null, '', wanted);
  }
  sync();
  addEventListener('popstate', sync);
}

/** Goes to `to` (a path with optional query) and scrolls to the top. */
export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  sync();
  scrollTo(0, 0);
}

/** Svelte action for `<a href>`: plain clicks navigate in the app; modified clicks open as usual. */
export function link(node: HTMLAnchorElement): { destroy(): void } {
  const onClick = (e: MouseEvent): void => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(node.getAttribute('href') ?? '/');
  };
  node.addEventListener('click', onClick);
  return { destroy: () => node.removeEventListener('click', onClick) };
}

/** Matches `path` against a pattern like `/devices/:id`; returns the parameters or null. */
export function match(pattern: string, path: string = route.path): Record<string, string> | null {
  const want = pattern.split('/');
  const got = path.replace(/\/+$/, '').split('/');
  if (pattern === '/' && path === '/') return {};
  if (want.length !== got.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const w = want[i] ?? '';
    const g = got[i] ?? '';
    if (w.startsWith(':')) params[w.slice(1)] = decodeURIComponent(g);
    else if (w !== g) return null;
  }
  return params;
}
