// GET /openapi.json (OpenAPI 3.1, built from the router) and GET /docs (Swagger UI served from
// the swagger-ui-dist package: no CDN, works offline).
import { createRequire } from 'node:module';
import path from 'node:path';
import express, { Router } from 'express';
import { z } from 'zod';
import { doc } from '../openapi/route-meta.js';

const swaggerUiDir = path.dirname(
  createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'),
);

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Parley API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
`;

// A separate file rather than an inline script, so helmet's Content-Security-Policy can stay
// `script-src 'self'`. validatorUrl: null stops Swagger UI calling out to swagger.io.
const INIT = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null,
  persistAuthorization: true,
});
`;

export function docsRoutes(openapi: () => object): Router {
  const router = Router();
  router.get(
    '/openapi.json',
    doc({
      summary: 'This document (OpenAPI 3.1)',
      tags: ['operations'],
      success: { status: 200, schema: z.record(z.string(), z.unknown()), raw: true },
    }),
    (_req, res) => {
      res.json(openapi());
    },
  );
  router.get(
    '/docs',
    doc({
      summary: 'Interactive API reference (Swagger UI)',
      tags: ['operations'],
      success: { status: 200, schema: z.string(), contentType: 'text/html', raw: true },
    }),
    (_req, res) => {
      res.type('html').send(PAGE);
    },
  );
  router.get(
    '/docs/init.js',
    doc({
      summary: 'Swagger UI start-up script used by /docs',
      tags: ['operations'],
      success: {
        status: 200,
        schema: z.string(),
        contentType: 'application/javascript',
        raw: true,
      },
    }),
    (_req, res) => {
      res.type('application/javascript').send(INIT);
    },
  );
  router.use('/docs/assets', express.static(swaggerUiDir, { index: false, maxAge: '1d' }));
  return router;
}
