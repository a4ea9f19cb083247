// Passport strategies: "local" checks an email and password (login), "jwt" checks the bearer
// access token and that its session is still alive (every other authenticated route).
import type { Request, RequestHandler } from 'express';
import { Passport } from 'passport';
import { ExtractJwt, Strategy as JwtStrategy } from 'passport-jwt';
import { Strategy as LocalStrategy } from 'passport-local';
import type { User } from '../db/schema.js';
import { unauthorized } from '../errors.js';
import { describeHandler } from '../openapi/route-meta.js';
import type { AuthService, ClientInfo } from '../services/auth.service.js';
import type { Principal, SessionService } from '../services/session.service.js';
import { asAccessClaims, type TokenService } from '../services/token.service.js';
import { byIp, type RequestOrigin } from './client-origin.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    // Passport's req.user on an authenticated route is the caller's principal.
    // eslint-disable-next-line @typescript-eslint/no-empty-object-type
    interface User extends Principal {}
  }
}

export const clientInfo = (req: RequestOrigin): ClientInfo => ({
  ip: byIp(req),
  userAgent: req.get('user-agent'),
});

export interface AuthMiddleware {
  /** Requires a valid bearer access token of a live session; sets req.user. */
  requireAuth: RequestHandler;
  /** Checks email+password of a validated login body; sets res.locals.authenticatedUser. */
  authenticateCredentials: RequestHandler;
}

export function createAuthMiddleware(deps: {
  tokens: TokenService;
  sessions: SessionService;
  auth: AuthService;
}): AuthMiddleware {
  const passport = new Passport();
  const { key, algorithms, issuer } = deps.tokens.verifyOptions;

  passport.use(
    'jwt',
    new JwtStrategy(
      {
        jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
        // passport-jwt hands this to jsonwebtoken, which takes a KeyObject (its types say string).
        secretOrKey: key as unknown as Buffer,
        algorithms,
        issuer,
      },
      (
        payload: unknown,
        done: (error: unknown, user?: Principal | false, info?: unknown) => void,
      ) => {
        const claims = asAccessClaims(payload);
        if (!claims) return done(null, false, { message: 'Invalid access token' });
        deps.sessions.authenticate(claims).then(
          (principal) => done(null, principal ?? false, { message: 'Session is no longer active' }),
          (error: unknown) => done(error),
        );
      },
    ),
  );

  passport.use(
    'local',
    new LocalStrategy(
      {
        usernameField: 'email',
        passwordField: 'password',
        session: false,
        passReqToCallback: true,
      },
      (req, email, password, done) => {
        deps.auth.verifyCredentials(email, password, clientInfo(req)).then(
          // Passport types the result as the JWT principal; here it is the database user,
          // which authenticateCredentials moves to res.locals and never onto req.user.
          (user) => done(null, user as unknown as Express.User),
          (error: unknown) => done(error),
        );
      },
    ),
  );

  // passport.authenticate() is typed `any`; both handlers below are plain RequestHandlers.
  const requireAuth: RequestHandler = (req, res, next) => {
    const handler: RequestHandler = passport.authenticate(
      'jwt',
      { session: false },
      (error: unknown, principal: Principal | false, info: unknown) => {
        if (error) return next(error);
        if (!principal) return next(unauthorized(jwtFailureMessage(req, info)));
        req.user = principal;
        next();
      },
    ) as RequestHandler;
    handler(req, res, next);
  };

  const authenticateCredentials: RequestHandler = (req, res, next) => {
    const handler: RequestHandler = passport.authenticate(
      'local',
      { session: false },
      (error: unknown, user: User | false) => {
        if (error) return next(error);
        if (!user) return next(unauthorized('Invalid email or password'));
        res.locals.authenticatedUser = user;
        next();
      },
    ) as RequestHandler;
    handler(req, res, next);
  };

  return {
    requireAuth: describeHandler(requireAuth, { bearer: true, errors: ['UNAUTHORIZED'] }),
    authenticateCredentials: describeHandler(authenticateCredentials, {
      errors: ['UNAUTHORIZED', 'RATE_LIMITED'],
    }),
  };
}

function jwtFailureMessage(req: Request, info: unknown): string {
  if (!req.get('authorization')) return 'Authentication required';
  const name = info instanceof Error ? info.name : undefined;
  if (name === 'TokenExpiredError') return 'Access token has expired';
  if (info && typeof info === 'object' && 'message' in info && !(info instanceof Error)) {
    return String(info.message);
  }
  return 'Invalid access token';
}

/** The principal set by requireAuth; a route without it is a programming error. */
export function principalOf(req: { user?: Principal | undefined }): Principal {
  if (!req.user) throw new Error('principalOf() used on a route without requireAuth');
  return req.user;
}
