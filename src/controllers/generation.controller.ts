// /api/chat/generations: follow an AI answer as Server-Sent Events, or stop it.
import type { Request, Response } from 'express';
import { principalOf } from '../middleware/auth.middleware.js';
import type { IdParams } from '../schemas/common.schemas.js';
import type { GenerationService } from '../services/generation.service.js';
import { ok } from './respond.js';
import { resumePoint, streamGeneration } from './sse.js';

export class GenerationController {
  constructor(private readonly generations: GenerationService) {}

  /** SSE of a generation, resumable with Last-Event-ID (SPEC §7). */
  stream = async (req: Request<IdParams>, res: Response) => {
    const follow = await this.generations.openStream(
      principalOf(req),
      req.params.id,
      resumePoint(req),
    );
    // 204 is how SSE says "done, do not reconnect" (EventSource stops retrying on it).
    if (!follow) res.status(204).end();
    else streamGeneration(req, res, follow);
  };

  stop = async (req: Request<IdParams>, res: Response) => {
    ok(res, await this.generations.stop(principalOf(req), req.params.id));
  };
}
