/**
 * The signed-in user and the signed-in admin, each kept in localStorage so a reload keeps them.
 * They are separate sessions: the admin panel and the user area each have their own token.
 */
import { createClient } from './api';
import type { AdminUser, Login, User } from './models';

/** Why the last session ended, shown on the login page once. */
export const notice = $state({ text: '' });

function persisted<U>(key: string) {
  const read = (): Login<U> | null => {
    try {
      return JSON.parse(localStorage.getItem(key) ?? 'null') as Login<U> | null;
    } catch {
      return null;
    }
  };
  const state = $state({ current: read() });
  return {
    get current(): Login<U> | null {
      return state.current;
    },
    set(login: Login<U>): void {
      localStorage.setItem(key, JSON.stringify(login));
      state.current = login;
    },
    clear(reason = ''): void {
      localStorage.removeItem(key);
      state.current = null;
      notice.text = reason;
    },
  };
}

export const userSession = persisted<User>('iotgo.user');
export const adminSession = persisted<AdminUser>('iotgo.admin');

const expired = 'Your session has ended. Please log in again.';

/** The user area's Web API client. */
export const userApi = createClient({
  token: () => userSession.current?.jwt ?? null,
  onUnauthorized: () => userSession.clear(expired),
});

/** The admin panel's Web API client. */
export const adminApi = createClient({
  token: () => adminSession.current?.jwt ?? null,
  onUnauthorized: () => adminSession.clear(expired),
});

/**
 * Whether a user token says `isActivated` (false only while the server asks for e-mail
 * verification and the address is not verified yet). Read from the token's payload, as the
 * original web app did.
 */
export function isActivated(jwt: string): boolean {
  try {
    const part = (jwt.split('.')[1] ?? '').replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part)) as { isActivated?: unknown };
    return claims.isActivated !== false;
  } catch {
    return true;
  }
}
