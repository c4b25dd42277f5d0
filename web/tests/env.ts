/** Settings shared by the global setup and the tests. */
export const ADMIN_EMAIL = 'admin@example.com';
export const ADMIN_PASSWORD = 'adminpass123';
/** Where the tests write screenshots of the main pages (ignored by git). */
export const SHOTS = 'test-output';
