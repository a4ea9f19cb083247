// What a route's handlers say about it, for the OpenAPI document: validate() registers its
// schemas, requireAuth the bearer security, rateLimit() its 429, doc() the summary and success
// response. The document is then built from the router itself, so it cannot drift from it.
import type { RequestHandler } from 'express';
import type { z } from 'zod';
import type { ErrorCode } from '../errors.js';

export interface OperationMeta {
  summary?: string;
  description?: string;
  tags?: string[];
  operationId?: string;
  request?: { body?: z.ZodType; params?: z.ZodType; query?: z.ZodType };
  success?: {
    status: number;
    description?: string;
    /** The `data` of the success envelope (JSON) — or the raw body for other content types. */
    schema?: z.ZodType;
    contentType?: string;
    /** True when the body is not wrapped in the {success, data} envelope. */
    raw?: boolean;
  };
  /** Error codes this route can answer besides those its middleware register. */
  errors?: ErrorCode[];
  /** Requires `Authorization: Bearer <access token>`. */
  bearer?: boolean;
  /** Request body is multipart/form-data (uploads). */
  multipart?: boolean;
}

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- keys are any handler
const registry = new WeakMap<Function, OperationMeta>();

/** Attaches metadata to a handler (merged with what it already had) and returns it. */
export function describeHandler<T extends RequestHandler>(handler: T, meta: OperationMeta): T {
  registry.set(handler, mergeMeta(registry.get(handler) ?? {}, meta));
  return handler;
}

export const metaOf = (handler: unknown): OperationMeta | undefined =>
  typeof handler === 'function' ? registry.get(handler) : undefined;

/** A no-op step in a route's chain that documents it: `router.get(path, doc({...}), …)`. */
export function doc(meta: OperationMeta): RequestHandler {
  return describeHandler((_req, _res, next) => next(), meta);
}

export function mergeMeta(a: OperationMeta, b: OperationMeta): OperationMeta {
  return {
    ...a,
    ...b,
    request: { ...a.request, ...b.request },
    errors: [...new Set([...(a.errors ?? []), ...(b.errors ?? [])])],
    bearer: Boolean(a.bearer || b.bearer),
    multipart: Boolean(a.multipart || b.multipart),
  };
}
