// /api/auth: request → auth and session services → envelope.
import type { Request, Response } from 'express';
import type { User } from '../db/schema.js';
import { clientInfo, principalOf } from '../middleware/auth.middleware.js';
import type { IdParams } from '../schemas/common.schemas.js';
import type { RefreshBody, RegisterBody } from '../schemas/auth.schemas.js';
import type { AuthService } from '../services/auth.service.js';
import type { SessionService } from '../services/session.service.js';
import { created, ok } from './respond.js';

export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly sessions: SessionService,
  ) {}

  register = async (req: Request<unknown, unknown, RegisterBody>, res: Response) => {
    created(res, await this.auth.register(req.body, clientInfo(req)));
  };

  /** Runs after the credentials were checked by the local strategy. */
  login = async (req: Request, res: Response) => {
    const user = res.locals.authenticatedUser as User;
    ok(res, await this.auth.startSession(user, clientInfo(req)));
  };

  refresh = async (req: Request<unknown, unknown, RefreshBody>, res: Response) => {
    ok(res, await this.auth.refresh(req.body.refreshToken));
  };

  logout = async (req: Request, res: Response) => {
    const principal = principalOf(req);
    await this.auth.logout(principal);
    ok(res, { sessionId: principal.sessionId, revoked: true });
  };

  me = async (req: Request, res: Response) => {
    ok(res, await this.auth.me(principalOf(req)));
  };

  listSessions = async (req: Request, res: Response) => {
    ok(res, await this.sessions.list(principalOf(req)));
  };

  revokeSession = async (req: Request<IdParams>, res: Response) => {
    await this.sessions.revokeOwn(principalOf(req), req.params.id);
    ok(res, { sessionId: req.params.id, revoked: true });
  };
}
