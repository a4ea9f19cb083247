// One access-log line and one histogram observation per request, by route pattern (never the
// raw path: ids in paths would explode the label set). The query string is never logged.
import type { Request, RequestHandler, Response } from 'express';
import type { Metrics } from '../infra/metrics.js';
import type { Logger } from '../utils/logger.js';

export function routeLabel(req: Request, res: Response): string {
  const route = req.route as { path?: unknown } | undefined;
  if (!route || typeof route.path !== 'string') return 'unmatched';
  const base = typeof res.locals.routerBase === 'string' ? res.locals.routerBase : '';
  return `${base}${route.path}` || '/';
}

export function observeRequests(metrics: Metrics, logger: Logger): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = routeLabel(req, res);
      metrics.httpRequestDuration.observe(
        { method: req.method, route, status_code: String(res.statusCode) },
        seconds,
      );
      if (!logger.isLevelEnabled('http')) return;
      const path = req.originalUrl.split('?', 1)[0];
      logger.http(`${req.method} ${path} ${res.statusCode} ${(seconds * 1000).toFixed(1)}ms`, {
        route,
        ip: req.ip,
      });
    });
    next();
  };
}
