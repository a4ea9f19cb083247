// Gives a registered user a global role, then logs in again so a fresh session carries it.
import { sql } from 'drizzle-orm';
import type { AuthData, RegisteredUser } from '../factories.js';
import type { Envelope } from './api-client.js';
import type { TestServer } from './server.js';

export async function withGlobalRole(
  server: TestServer,
  user: RegisteredUser,
  role: 'ADMIN' | 'MODERATOR',
): Promise<RegisteredUser> {
  await server.container.database.db.execute(
    sql`update users set role = ${role} where id = ${user.user.id}`,
  );
  const login = await server.api.post<Envelope<AuthData>>('/api/auth/login', {
    email: user.input.email,
    password: user.input.password,
  });
  if (login.status !== 200) throw new Error(`login failed: ${login.text}`);
  return { ...login.body.data!, input: user.input };
}
