// Gives every request an id (the caller's X-Request-Id when sane), echoes it, and runs the rest
// of the chain inside a context so every log line names it.
import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import { requestContext } from '../utils/request-context.js';

const SAFE_REQUEST_ID = /^[\w.:-]{1,64}$/;

export const assignRequestId: RequestHandler = (req, res, next) => {
  const incoming = req.get('x-request-id');
  const requestId = incoming && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
  res.locals.requestId = requestId;
  res.setHeader('X-Request-Id', requestId);
  requestContext.run({ requestId }, next);
};

/**
 * Records the mount path of the router a request entered. Express resets `req.baseUrl` when an
 * error leaves a router, so the route label for logs and metrics is taken from here instead.
 */
export const markRouterBase: RequestHandler = (req, res, next) => {
  res.locals.routerBase = req.baseUrl;
  next();
};
