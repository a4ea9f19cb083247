// The success half of the response envelope (SPEC §5); errors go through the error middleware.
import type { Response } from 'express';

export function ok(res: Response, data: unknown, status = 200): void {
  res.status(status).json({ success: true, data });
}

export const created = (res: Response, data: unknown): void => ok(res, data, 201);
