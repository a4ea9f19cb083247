// /api/auth (SPEC §5 Auth).
import { Router } from 'express';
import { z } from 'zod';
import type { AuthController } from '../controllers/auth.controller.js';
import type { AuthMiddleware } from '../middleware/auth.middleware.js';
import { rateLimit } from '../middleware/rate-limit.middleware.js';
import { validate } from '../middleware/validate.middleware.js';
import type { Limiter } from '../infra/rate-limiter.js';
import { doc } from '../openapi/route-meta.js';
import {
  AuthResult,
  LoginBody,
  PublicUser,
  RefreshBody,
  RegisterBody,
  SessionRevoked,
  SessionView,
} from '../schemas/auth.schemas.js';
import { IdParams } from '../schemas/common.schemas.js';

export function authRoutes(
  auth: AuthController,
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
