// Operations endpoints: liveness, readiness with the failing part named, Prometheus metrics.
import type { Request, Response } from 'express';
import { unauthorized, unavailable } from '../errors.js';
import type { Metrics } from '../infra/metrics.js';
import { runReadinessCheck, type ReadinessCheck } from '../infra/readiness.js';
import { describeError, type Logger } from '../utils/logger.js';
import { safeEqual } from '../utils/tokens.js';
import { ok } from './respond.js';

export class OpsController {
  private readonly startedAt = Date.now();

  constructor(
    private readonly checks: readonly ReadinessCheck[],
    private readonly metrics: Metrics,
    private readonly metricsToken: string | undefined,
    private readonly logger: Logger,
  ) {}

  health = (_req: Request, res: Response) => {
    ok(res, { status: 'ok', uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000) });
  };

  ready = async (_req: Request, res: Response) => {
    const results = await Promise.all(
      this.checks.map(async (check) => ({
        name: check.name,
        failure: await runReadinessCheck(check),
      })),
    );
    const failed = results.flatMap(({ name, failure }) => (failure ? [{ name, ...failure }] : []));
    const checks = Object.fromEntries(results.map((r) => [r.name, r.failure ? 'fail' : 'ok']));
    // Only what the response leaves out is logged: a plain reason (a model downloading) would
    // otherwise fill the log at every probe of a load balancer.
    for (const { name, withheld } of failed) {
      if (withheld !== undefined)
        this.logger.warn(`Readiness check "${name}" failed`, describeError(withheld));
    }
    if (failed.length > 0) {
      throw unavailable(`Not ready: ${failed.map((f) => f.name).join(', ')} unavailable`, {
        checks,
        errors: Object.fromEntries(failed.map((f) => [f.name, f.reason])),
      });
    }
    ok(res, { status: 'ready', checks });
  };

  metricsText = async (req: Request, res: Response) => {
    if (this.metricsToken) {
      const presented = req.get('authorization')?.replace(/^Bearer\s+/i, '') ?? '';
      if (!safeEqual(presented, this.metricsToken)) throw unauthorized('Metrics token required');
    }
    res.setHeader('Content-Type', this.metrics.registry.contentType);
    res.send(await this.metrics.registry.metrics());
  };
}
