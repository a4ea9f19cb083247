// Winston logger: readable lines in development, JSON in production; every line carries the
// current request id. Nothing here logs bodies or headers, so secrets stay out of the logs.
import winston from 'winston';
import { currentRequestId } from './request-context.js';

export type Logger = winston.Logger;

const withRequestId = winston.format((info) => {
  const requestId = currentRequestId();
  if (requestId && info.requestId === undefined) info.requestId = requestId;
  return info;
});

export function createLogger(options: {
  level: string;
  json: boolean;
  /** Where lines go besides stderr/stdout (tests capture them). */
  transports?: winston.transport[];
}): Logger {
  const readable = winston.format.printf(({ timestamp, level, message, requestId, ...meta }) => {
    const rest = Object.keys(meta).length ? ` ${JSON.stringify(meta)}` : '';
    const id = typeof requestId === 'string' ? ` [${requestId}]` : '';
    return `${String(timestamp)} ${level}${id} ${String(message)}${rest}`;
  });
  return winston.createLogger({
    level: options.level === 'silent' ? 'error' : options.level,
    silent: options.level === 'silent',
    format: winston.format.combine(
      withRequestId(),
      winston.format.timestamp(),
      options.json
        ? winston.format.json()
        : winston.format.combine(winston.format.colorize(), readable),
    ),
    transports: [
      new winston.transports.Console({ stderrLevels: ['error', 'warn'] }),
      ...(options.transports ?? []),
    ],
  });
}

/**
 * What of an error is safe to log. Drizzle's query errors embed the statement's parameters
 * (password hashes, token hashes), so only the message's first line and the SQLSTATE are kept.
 */
export function describeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { error: String(error) };
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  const firstLine = (text: string) =>
    text
      .split('\n')[0]
      ?.replace(/params:.*$/s, '')
      .trim();
  return {
    error: error.name,
    message: firstLine(error.message),
    ...(cause && typeof cause === 'object'
      ? {
          cause: typeof cause.message === 'string' ? firstLine(cause.message) : undefined,
          code: cause.code,
        }
      : {}),
    // Only the frames: the stack's head repeats the message, parameters included.
    stack: error.stack
      ?.split('\n')
      .filter((line) => line.trimStart().startsWith('at '))
      .slice(0, 8)
      .join('\n'),
  };
}
