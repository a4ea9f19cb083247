// /api/users (SPEC §5 Users): finding someone by their exact username, and nothing more — no
// listing, no prefix search, no lookup by email, so accounts cannot be enumerated.
import { Router, type RequestHandler } from 'express';
import type { UserController } from '../controllers/user.controller.js';
import type { Limiter } from '../infra/rate-limiter.js';
import { byUser, rateLimit } from '../middleware/rate-limit.middleware.js';
import { validate } from '../middleware/validate.middleware.js';
import { doc } from '../openapi/route-meta.js';
import { LookupQuery, UserSummary } from '../schemas/auth.schemas.js';

export function userRoutes(
  users: UserController,
  requireAuth: RequestHandler,
  limits: { lookup: Limiter },
): Router {
  const router = Router();
  router.use(requireAuth);
  router.get(
    '/lookup',
    doc({
      summary:
        'Someone by their exact username, ignoring case (LOOKUP_RATE_LIMIT per LOOKUP_RATE_WINDOW per user); 404 when nobody has it',
      success: { status: 200, schema: UserSummary },
      errors: ['NOT_FOUND'],
    }),
    // Counted before the query is read: a malformed guess costs a guess too.
    rateLimit(limits.lookup, byUser),
    validate({ query: LookupQuery }),
    users.lookup,
  );
  return router;
}
