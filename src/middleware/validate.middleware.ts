// Parses a request's body, params and query with zod schemas and replaces them with the
// parsed values; anything that does not fit is a 400 naming each bad field.
import type { RequestHandler } from 'express';
import type { z } from 'zod';
import { AppError, validationError } from '../errors.js';
import { describeHandler } from '../openapi/route-meta.js';

interface RequestSchemas {
  body?: z.ZodType;
  params?: z.ZodType;
  query?: z.ZodType;
}

export function formatIssues(issues: readonly z.core.$ZodIssue[]) {
  return issues.map((issue) => ({
    path: issue.path.map(String).join('.'),
    message: issue.message,
    code: issue.code,
  }));
}

function parse<T>(schema: z.ZodType<T>, value: unknown, part: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const details = formatIssues(result.error.issues);
  const summary = details
    .slice(0, 3)
    .map((d) => (d.path ? `${d.path}: ${d.message}` : d.message))
    .join('; ');
  throw validationError(`Invalid request ${part}: ${summary}`, details);
}

function hasBody(req: Parameters<RequestHandler>[0]): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/** True when a query or path value holds a NUL, which PostgreSQL text cannot store. */
function hasNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (Array.isArray(value)) return value.some(hasNul);
  if (value && typeof value === 'object') return Object.values(value).some(hasNul);
  return false;
}

export function validate(schemas: RequestSchemas): RequestHandler {
  const handler: RequestHandler = (req, _res, next) => {
    if (hasNul(req.params) || hasNul(req.query)) {
      throw validationError('NUL characters are not allowed in the URL');
    }
    if (schemas.body) {
      if (hasBody(req) && !req.is('application/json')) {
        throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'Request body must be application/json');
      }
      // A JSON route called with no body at all is validated as an empty object.
      req.body = parse(schemas.body, req.body ?? {}, 'body');
    }
    if (schemas.params) req.params = parse(schemas.params, req.params, 'path') as typeof req.params;
    if (schemas.query) {
      // Express 5 exposes req.query through a getter; shadow it with the parsed value.
      Object.defineProperty(req, 'query', {
        value: parse(schemas.query, req.query, 'query'),
        writable: true,
        configurable: true,
      });
    }
    next();
  };
  return describeHandler(handler, {
    request: schemas,
    errors: schemas.body
      ? ['VALIDATION_ERROR', 'UNSUPPORTED_MEDIA_TYPE', 'PAYLOAD_TOO_LARGE']
      : ['VALIDATION_ERROR'],
  });
}
