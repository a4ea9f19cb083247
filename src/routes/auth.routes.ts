// /api/auth (SPEC §5 Auth).
import { Router } from 'express';
import { z } from 'zod';
import type { AccountController } from '../controllers/account.controller.js';
import type { AuthController } from '../controllers/auth.controller.js';
import type { AuthMiddleware } from '../middleware/auth.middleware.js';
import { rateLimit } from '../middleware/rate-limit.middleware.js';
import { validate } from '../middleware/validate.middleware.js';
import type { Limiter } from '../infra/rate-limiter.js';
import { doc } from '../openapi/route-meta.js';
import {
  AccountDeleted,
  AccountExport,
  AuthResult,
  ChangePasswordBody,
  DeleteAccountBody,
  LoginBody,
  PasswordChanged,
  PublicUser,
  RefreshBody,
  RegisterBody,
  SessionRevoked,
  SessionView,
  UpdateMeBody,
} from '../schemas/auth.schemas.js';
import { IdParams } from '../schemas/common.schemas.js';

export function authRoutes(
  auth: AuthController,
  account: AccountController,
  { requireAuth, authenticateCredentials }: AuthMiddleware,
  limits: { register: Limiter },
): Router {
  const router = Router();
  router.post(
    '/register',
    doc({
      summary: 'Create an account and a session',
      success: { status: 201, schema: AuthResult },
      errors: ['CONFLICT'],
    }),
    rateLimit(limits.register),
    validate({ body: RegisterBody }),
    auth.register,
  );
  router.post(
    '/login',
    doc({
      summary: 'Log in: a new session and token pair',
      success: { status: 200, schema: AuthResult },
    }),
    validate({ body: LoginBody }),
    authenticateCredentials,
    auth.login,
  );
  router.post(
    '/refresh',
    doc({
      summary: 'Exchange a refresh token for a new pair; a reused token revokes its session',
      success: { status: 200, schema: AuthResult },
      errors: ['UNAUTHORIZED'],
    }),
    validate({ body: RefreshBody }),
    auth.refresh,
  );
  router.post(
    '/logout',
    doc({
      summary: 'Revoke the current session at once',
      success: { status: 200, schema: SessionRevoked },
    }),
    requireAuth,
    auth.logout,
  );
  router.get(
    '/me',
    doc({
      summary: 'The current user',
      success: { status: 200, schema: PublicUser },
      errors: ['NOT_FOUND'],
    }),
    requireAuth,
    auth.me,
  );
  router.patch(
    '/me',
    doc({
      summary:
        'Change my username and/or avatar (the id of an image I uploaded, or null). Both are public to signed-in users',
      success: { status: 200, schema: PublicUser },
      errors: ['CONFLICT'],
    }),
    requireAuth,
    validate({ body: UpdateMeBody }),
    account.updateMe,
  );
  router.delete(
    '/me',
    doc({
      summary:
        'Delete my account (password confirmed): my sessions and sockets end; my messages stay in shared conversations, shown as from a deleted user; conversations only I was in are deleted; nothing else of mine remains',
      success: { status: 200, schema: AccountDeleted },
      errors: ['FORBIDDEN', 'RATE_LIMITED', 'CONFLICT'],
    }),
    requireAuth,
    validate({ body: DeleteAccountBody }),
    account.deleteMe,
  );
  router.get(
    '/me/export',
    doc({
      summary:
        'Everything of mine or that I can read, as one JSON document streamed as it is read: profile, sessions, conversations with participants, every message on every branch with reactions and attachment metadata, my uploads. Not wrapped in the envelope',
      success: { status: 200, schema: AccountExport, raw: true },
      errors: ['NOT_FOUND'],
    }),
    requireAuth,
    account.export,
  );
  router.post(
    '/password',
    doc({
      summary:
        'Change my password (the current one confirmed, counted like a failed login when wrong): every other session of mine ends at once, REST and sockets',
      success: { status: 200, schema: PasswordChanged },
      errors: ['FORBIDDEN', 'RATE_LIMITED', 'CONFLICT'],
    }),
    requireAuth,
    validate({ body: ChangePasswordBody }),
    account.changePassword,
  );
  router.get(
    '/sessions',
    doc({ summary: 'My live sessions', success: { status: 200, schema: z.array(SessionView) } }),
    requireAuth,
    auth.listSessions,
  );
  router.delete(
    '/sessions/:id',
    doc({
      summary: 'Revoke one of my sessions',
      success: { status: 200, schema: SessionRevoked },
      errors: ['NOT_FOUND'],
    }),
    requireAuth,
    validate({ params: IdParams }),
    auth.revokeSession,
  );
  return router;
}
