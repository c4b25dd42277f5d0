/** A paged admin list: the current page, the total from `X-Total-Count`, and the last error. */
import { message, type Query } from '../lib/api';
import { adminApi } from '../lib/session.svelte';

export const PAGE = 20;

export function pagedList<T>(path: string) {
  const list = $state({ items: [] as T[], total: 0, skip: 0, error: '', loaded: false });

  /** Loads the page starting at `skip` with these filters. */
  async function load(filters: Query, skip = 0): Promise<void> {
    try {
      const { data, headers } = await adminApi.list<T>(path, { ...filters, limit: PAGE, skip });
      list.items = data;
      list.total = Number(headers.get('X-Total-Count') ?? data.length);
      list.skip = skip;
      list.error = '';
    } catch (e) {
      list.error = message(e);
    } finally {
      list.loaded = true;
    }
  }

  return { list, load };
}

/** A date input's day as the start (or the end) of that day in local time, ISO 8601. */
export function dayBound(day: string, end: boolean): string | undefined {
  if (!day) return undefined;
  const d = new Date(`${day}T00:00:00`);
  if (end) d.setDate(d.getDate() + 1), d.setMilliseconds(-1);
  return d.toISOString();
}
