// /api/auth/me and /api/auth/password: one's own account → account services → envelope (or, for
// the export, a JSON document streamed as it is read).
import type { Request, Response } from 'express';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { clientInfo, principalOf } from '../middleware/auth.middleware.js';
import type {
  ChangePasswordBody,
  DeleteAccountBody,
  UpdateMeBody,
} from '../schemas/auth.schemas.js';
import type { AccountDeletion } from '../services/account-deletion.js';
import type { AccountExport } from '../services/account-export.js';
import type { AccountService } from '../services/account.service.js';
import { ok } from './respond.js';

type Req<Body> = Request<unknown, unknown, Body>;

export class AccountController {
  constructor(
    private readonly accounts: AccountService,
    private readonly deletion: AccountDeletion,
    private readonly exports: AccountExport,
  ) {}

  updateMe = async (req: Req<UpdateMeBody>, res: Response) => {
    ok(res, await this.accounts.updateProfile(principalOf(req), req.body));
  };

  changePassword = async (req: Req<ChangePasswordBody>, res: Response) => {
    ok(res, await this.accounts.changePassword(principalOf(req), req.body, clientInfo(req)));
  };

  deleteMe = async (req: Req<DeleteAccountBody>, res: Response) => {
    await this.deletion.delete(principalOf(req), req.body.password, clientInfo(req));
    ok(res, { deleted: true });
  };

  export = async (req: Request, res: Response) => {
    const day = new Date().toISOString().slice(0, 10);
    await this.exports.export(principalOf(req), async (pieces) => {
      res.status(200);
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.setHeader('Content-Disposition', `attachment; filename="parley-export-${day}.json"`);
      res.setHeader('Cache-Control', 'private, no-store');
      // Backpressure: the next page is read only once the client took the last. A failure once
      // bytes are out cannot become an envelope: the connection is cut (the truncated JSON tells
      // the client), and the error goes on to be logged. A client that went away is no error.
      await pipeline(Readable.from(pieces), res).catch((error: unknown) => {
        if ((error as { code?: unknown }).code !== 'ERR_STREAM_PREMATURE_CLOSE') throw error;
      });
    });
  };
}
