// Accounts and sessions: register, check credentials (throttled), issue token pairs, rotate
// refresh tokens with reuse detection, log out.
import type { User } from '../db/schema.js';
import { conflict, forbidden, notFound, rateLimited, unauthorized } from '../errors.js';
import type { Limiter } from '../infra/rate-limiter.js';
import type { SessionRepository } from '../repositories/session.repository.js';
import type { UserRepository } from '../repositories/user.repository.js';
import type { PasswordHasher } from '../utils/password.js';
import { hashToken, randomToken } from '../utils/tokens.js';
import type { Principal, SessionService } from './session.service.js';
import type { TokenService } from './token.service.js';
import { avatarPath } from './views.js';

/** Where a request came from; stored on the session and used for throttling. */
export interface ClientInfo {
  ip: string;
  userAgent: string | undefined;
}

/** A user as the API shows it: never the password hash. */
export type PublicUser = Omit<User, 'passwordHash'>;

export interface AuthResult {
  user: PublicUser;
  accessToken: string;
  refreshToken: string;
  /** Seconds until the access token expires. */
  expiresIn: number;
}

export interface LoginLimiters {
  /**
   * Failed logins for one email from one address (SPEC §8: 5 in 15 minutes). Every attempt
   * takes a point up front; a success clears the key.
   */
  perEmailIp: Limiter;
  /** Failed logins from one address, whatever the email (100 in 15 minutes); a success refunds. */
  perIp: Limiter;
}

const INVALID_CREDENTIALS = 'Invalid email or password';
const WRONG_PASSWORD = 'Password is incorrect';

export class AuthService {
  constructor(
    private readonly users: UserRepository,
    private readonly sessions: SessionRepository,
    private readonly sessionService: SessionService,
    private readonly tokens: TokenService,
    private readonly passwords: PasswordHasher,
    private readonly loginLimiters: LoginLimiters,
    private readonly refreshTtlMs: number,
  ) {}

  async register(
    input: { email: string; password: string; username?: string | undefined },
    client: ClientInfo,
  ): Promise<AuthResult> {
    const passwordHash = await this.passwords.hash(input.password);
    const created = await this.users.create({
      email: input.email,
      username: input.username ?? null,
      passwordHash,
    });
    if (!created.ok) {
      throw conflict(
        created.taken === 'email' ? 'Email is already registered' : 'Username is already taken',
      );
    }
    return this.startSession(created.user, client);
  }

  /**
   * The user for an email and password, or 401 with one message whether the email is unknown
   * or the password wrong. Each attempt takes a point from the per email+IP and per IP budgets
   * before anything is looked up; once either is spent the answer is 429 with Retry-After, even
   * for the right password. A wrong password keeps its points; a right one gives back the per IP
   * point and clears the email+IP failures.
   */
  async verifyCredentials(email: string, password: string, client: ClientInfo): Promise<User> {
    const emailIpKey = `${email}|${client.ip}`;
    await this.reserveLoginAttempt(emailIpKey, client.ip);

    let user: User | undefined;
    let valid: boolean;
    try {
      user = await this.users.getByEmail(email);
      valid = user?.passwordHash
        ? await this.passwords.verify(user.passwordHash, password)
        : (await this.passwords.verifyDummy(password), false);
    } catch (error) {
      // Our failure, not a guess: the attempt must not count against the caller.
      await this.refundLoginAttempt(emailIpKey, client.ip);
      throw error;
    }
    if (!user || !valid) throw unauthorized(INVALID_CREDENTIALS);
    await Promise.all([
      this.loginLimiters.perEmailIp.reset(emailIpKey),
      this.loginLimiters.perIp.refund(client.ip),
    ]);
    return user;
  }

  /**
   * Confirms the signed-in user's own password before a change to the account (password change,
   * deletion): 403 when wrong. Guesses come out of the login budgets of the user's email and the
   * caller's address, so a stolen access token cannot be used to try passwords faster than a login.
   */
  async confirmPassword(user: User, password: string, client: ClientInfo): Promise<void> {
    const emailIpKey = `${user.email}|${client.ip}`;
    await this.reserveLoginAttempt(emailIpKey, client.ip);
    let valid: boolean;
    try {
      valid = user.passwordHash ? await this.passwords.verify(user.passwordHash, password) : false;
    } catch (error) {
      await this.refundLoginAttempt(emailIpKey, client.ip);
      throw error;
    }
    if (!valid) throw forbidden(WRONG_PASSWORD);
    await Promise.all([
      this.loginLimiters.perEmailIp.reset(emailIpKey),
      this.loginLimiters.perIp.refund(client.ip),
    ]);
  }

  /**
   * A new session for a user whose password was just checked. The session is written only while
   * the password is still the one checked (and the account still exists): a login that raced a
   * password change or an account deletion gets the 401 of a wrong password, never a session that
   * outlives the change.
   */
  async startSession(user: User, client: ClientInfo): Promise<AuthResult> {
    const refreshToken = randomToken();
    const now = new Date();
    const session = await this.sessions.createWhileCredentials(
      {
        userId: user.id,
        token: hashToken(refreshToken),
        userAgent: client.userAgent?.slice(0, 512) ?? null,
        ipAddress: client.ip,
        expiresAt: new Date(now.getTime() + this.refreshTtlMs),
      },
      user.passwordHash,
    );
    if (!session) throw unauthorized(INVALID_CREDENTIALS);
    await this.users.touchLastActive(user.id, now);
    return this.result({ ...user, lastActiveAt: now }, session.id, refreshToken);
  }

  /**
   * Exchanges a refresh token for a new pair. The old token dies; presenting a dead one
   * again means it leaked, so its whole session is revoked (SPEC §5).
   */
  async refresh(refreshToken: string): Promise<AuthResult> {
    const presentedHash = hashToken(refreshToken);
    const session = await this.sessions.getByTokenHash(presentedHash);
    if (!session) {
      const reusedSessionId = await this.sessions.getSessionIdOfRotatedToken(presentedHash);
      if (reusedSessionId) {
        await this.sessionService.revoke(reusedSessionId, 'reuse');
        throw unauthorized('Refresh token was already used; the session has been revoked');
      }
      throw unauthorized('Invalid refresh token');
    }
    if (session.revokedAt || session.expiresAt.getTime() <= Date.now()) {
      throw unauthorized('Session has expired or was revoked');
    }
    const nextToken = randomToken();
    const expiresAt = new Date(Date.now() + this.refreshTtlMs);
    const rotated = await this.sessions.rotate(
      session.id,
      presentedHash,
      hashToken(nextToken),
      expiresAt,
    );
    if (!rotated) {
      // Another refresh with the same token won the race: the token was used twice.
      await this.sessionService.revoke(session.id, 'reuse');
      throw unauthorized('Refresh token was already used; the session has been revoked');
    }
    const user = await this.users.getById(session.userId);
    if (!user) throw unauthorized('Invalid refresh token');
    return this.result(user, session.id, nextToken);
  }

  async logout(principal: Principal): Promise<void> {
    await this.sessionService.revoke(principal.sessionId, 'logout', principal.userId);
  }

  async me(principal: Principal): Promise<PublicUser> {
    const user = await this.users.getById(principal.userId);
    if (!user) throw notFound('User');
    return toPublicUser(user);
  }

  private result(user: User, sessionId: string, refreshToken: string): AuthResult {
    return {
      user: toPublicUser(user),
      accessToken: this.tokens.signAccess({ userId: user.id, sid: sessionId, role: user.role }),
      refreshToken,
      expiresIn: this.tokens.accessTtlSeconds,
    };
  }

  /**
   * Takes one point from each login budget, or throws 429. Counting before the password check,
   * with the store's atomic consume as the only judge, is what holds when guesses arrive
   * together (checking first and counting after the hash let a burst through) and across
   * instances once the store is Redis.
   */
  private async reserveLoginAttempt(emailIpKey: string, ip: string): Promise<void> {
    const { perEmailIp, perIp } = this.loginLimiters;
    const byEmail = await perEmailIp.hit(emailIpKey);
    // A refused attempt is no guess, so it takes nothing from the per IP budget: hammering one
    // locked account must not lock out the address's other accounts.
    if (!byEmail.allowed) throw tooManyLogins(byEmail.retryAfterMs);
    const byIp = await perIp.hit(ip);
    if (!byIp.allowed) {
      await perEmailIp.refund(emailIpKey);
      throw tooManyLogins(byIp.retryAfterMs);
    }
  }

  private async refundLoginAttempt(emailIpKey: string, ip: string): Promise<void> {
    await Promise.all([
      this.loginLimiters.perEmailIp.refund(emailIpKey),
      this.loginLimiters.perIp.refund(ip),
    ]);
  }
}

const tooManyLogins = (retryAfterMs: number) =>
  rateLimited(Math.ceil(retryAfterMs / 1000), 'Too many failed logins; try again later');

export function toPublicUser(user: User): PublicUser {
  const { passwordHash: _omitted, ...rest } = user;
  return { ...rest, avatar: avatarPath(user.avatar) };
}
