// /api/users: finding someone by their exact username → account service → envelope.
import type { Request, Response } from 'express';
import type { LookupQuery } from '../schemas/auth.schemas.js';
import type { AccountService } from '../services/account.service.js';
import { ok } from './respond.js';

export class UserController {
  constructor(private readonly accounts: AccountService) {}

  lookup = async (req: Request, res: Response) => {
    const { username } = req.query as unknown as LookupQuery;
    ok(res, await this.accounts.lookup(username));
  };
}
