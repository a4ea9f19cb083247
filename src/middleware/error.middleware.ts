// Turns every error into the response envelope of SPEC §5. Known errors keep their code;
// anything unexpected becomes INTERNAL with the request id, logged here, never a stack trace
// to the client.
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import { AppError, ERROR_STATUS, type ErrorCode } from '../errors.js';
import { describeError, type Logger } from '../utils/logger.js';
import { isOutage } from '../utils/outage.js';
import { isVanishedReference, VANISHED_REFERENCE_MESSAGE } from '../utils/vanished-reference.js';

/** Errors from body-parser and other http-errors style middleware carry a status and a type. */
interface HttpStyleError {
  status?: unknown;
  statusCode?: unknown;
  type?: unknown;
  expose?: unknown;
}

const BODY_PARSER_ERRORS: Record<string, [ErrorCode, string]> = {
  'entity.parse.failed': ['VALIDATION_ERROR', 'Malformed JSON body'],
  'entity.too.large': ['PAYLOAD_TOO_LARGE', 'Request body is too large'],
  'entity.verify.failed': ['VALIDATION_ERROR', 'Request body was rejected'],
  'encoding.unsupported': ['UNSUPPORTED_MEDIA_TYPE', 'Unsupported content encoding'],
  'charset.unsupported': ['UNSUPPORTED_MEDIA_TYPE', 'Unsupported charset'],
  'request.aborted': ['VALIDATION_ERROR', 'Request was aborted'],
  'request.size.invalid': ['VALIDATION_ERROR', 'Request body size did not match Content-Length'],
  'parameters.too.many': ['PAYLOAD_TOO_LARGE', 'Too many parameters'],
};

const CODE_BY_STATUS = new Map<number, ErrorCode>(
  Object.entries(ERROR_STATUS).map(([code, status]) => [status, code as ErrorCode]),
);

function toAppError(error: unknown): AppError | undefined {
  if (error instanceof AppError) return error;
  if (isOutage(error))
    return new AppError(
      'UNAVAILABLE',
      'A service Parley depends on is unavailable; try again shortly',
      {
        retryAfterSeconds: 2,
      },
    );
  if (isVanishedReference(error)) return new AppError('CONFLICT', VANISHED_REFERENCE_MESSAGE);
  const http = error as HttpStyleError | null;
  if (!http || typeof http !== 'object') return undefined;
  if (typeof http.type === 'string' && http.type in BODY_PARSER_ERRORS) {
    const [code, message] = BODY_PARSER_ERRORS[http.type]!;
    return new AppError(code, message);
  }
  const status = typeof http.status === 'number' ? http.status : http.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code = CODE_BY_STATUS.get(status) ?? 'VALIDATION_ERROR';
    const message = http.expose === true && error instanceof Error ? error.message : 'Bad request';
    return new AppError(code, message);
  }
  return undefined;
}

export function sendError(res: Response, error: AppError): void {
  if (error.retryAfterSeconds !== undefined)
    res.setHeader('Retry-After', String(error.retryAfterSeconds));
  res.status(error.status).json({
    success: false,
    error: error.message,
    code: error.code,
    ...(error.details === undefined ? {} : { details: error.details }),
  });
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) {
      // Too late for an envelope; let Express close the connection.
      next(error);
      return;
    }
    const known = toAppError(error);
    if (known) {
      sendError(res, known);
      return;
    }
    const requestId = String(res.locals.requestId ?? '');
    logger.error(
      `Unhandled error in ${req.method} ${req.originalUrl.split('?', 1)[0]}`,
      describeError(error),
    );
    res.status(500).json({
      success: false,
      error: `Internal server error (request ${requestId})`,
      code: 'INTERNAL',
      requestId,
    });
  };
}

export const notFoundHandler: RequestHandler = (req) => {
  throw new AppError('NOT_FOUND', `No route for ${req.method} ${req.path}`);
};
