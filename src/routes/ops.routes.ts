// Operations: /health, /ready, /metrics (SPEC §5 Operations).
import { Router } from 'express';
import { z } from 'zod';
import type { OpsController } from '../controllers/ops.controller.js';
import { doc } from '../openapi/route-meta.js';

const tags = ['operations'];
const Health = z.object({ status: z.literal('ok'), uptimeSeconds: z.int() });
const Ready = z.object({ status: z.literal('ready'), checks: z.record(z.string(), z.string()) });

export function opsRoutes(ops: OpsController): Router {
  const router = Router();
  router.get(
    '/health',
    doc({ summary: 'Liveness (no I/O)', tags, success: { status: 200, schema: Health } }),
    ops.health,
  );
  router.get(
    '/ready',
    doc({
      summary: 'Readiness: database (503 names the failing part)',
      tags,
      success: { status: 200, schema: Ready },
      errors: ['UNAVAILABLE'],
    }),
    ops.ready,
  );
  router.get(
    '/metrics',
    doc({
      summary: 'Prometheus metrics (bearer METRICS_TOKEN when configured)',
      tags,
      success: { status: 200, schema: z.string(), contentType: 'text/plain', raw: true },
      errors: ['UNAUTHORIZED'],
    }),
    ops.metricsText,
  );
  return router;
}
