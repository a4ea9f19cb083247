// Issue 3, acceptance 5: /openapi.json is valid OpenAPI 3.1 and lists every route; /docs loads
// with no network.
import { existsSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listRoutes } from '../../src/openapi/document.js';
import { startTestServer, type TestServer } from '../support/server.js';

interface OpenApiDocument {
  openapi: string;
  paths: Record<
    string,
    Record<string, { operationId: string; responses: Record<string, unknown>; security?: unknown }>
  >;
}

let server: TestServer;
let document: OpenApiDocument;
beforeAll(async () => {
  server = await startTestServer();
  const response = await server.api.get<OpenApiDocument>('/openapi.json');
  expect(response.status).toBe(200);
  document = response.body;
});
afterAll(async () => {
  await server.close();
});

describe('/openapi.json', () => {
  it('validates as OpenAPI 3.1', async () => {
    const validator = new Validator();
    const result = await validator.validate(document as unknown as Record<string, unknown>);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('lists every route of the router, with a unique operation id each', () => {
    const documented = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
    );
    const routes = listRoutes(server.app).map(
      (r) => `${r.method.toUpperCase()} ${r.path.replace(/:(\w+)/g, '{$1}')}`,
    );
    expect(documented.sort()).toEqual(routes.sort());
    const ids = Object.values(document.paths).flatMap((item) =>
      Object.values(item).map((op) => op.operationId),
    );
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('documents bodies, auth and errors for the message route', () => {
    const send = document.paths['/api/chat/conversations/{id}/messages']!.post!;
    expect(send.security).toEqual([{ bearerAuth: [] }]);
    expect(Object.keys(send.responses).sort()).toEqual([
      '201',
      '400',
      '401',
      '403',
      '404',
      '409',
      '413',
      '415',
      '429',
      '500',
    ]);
    expect(JSON.stringify(send)).toContain('clientMessageId');
  });
});

describe('/docs', () => {
  it('serves a page whose every asset is on this server', async () => {
    const page = await server.api.get<string>('/docs');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const assets = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThanOrEqual(3);
    for (const asset of assets) {
      expect(asset, 'no CDN').toMatch(/^\/[^/]/);
      const response = await fetch(`${server.url}${asset}`);
      expect(response.status, asset).toBe(200);
      await response.arrayBuffer();
    }
  });

  const chromium = '/usr/bin/chromium';
  it.skipIf(!existsSync(chromium))(
    `renders every operation in headless Chromium with all outside requests blocked${existsSync(chromium) ? '' : ' (SKIPPED: no /usr/bin/chromium; apt-get install chromium)'}`,
    async () => {
      const { chromium: launcher } = await import('playwright-core');
      const browser = await launcher.launch({
        executablePath: chromium,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--no-first-run',
        ],
      });
      try {
        const context = await browser.newContext();
        const outside: string[] = [];
        await context.route('**/*', (route) => {
          const url = route.request().url();
          if (url.startsWith(server.url)) return route.continue();
          outside.push(url);
          return route.abort();
        });
        const tab = await context.newPage();
        const errors: string[] = [];
        tab.on('pageerror', (error) => errors.push(error.message));
        await tab.goto(`${server.url}/docs`);
        await tab.waitForSelector('.opblock', { timeout: 20_000 });
        const operations = await tab.locator('.opblock').count();
        const expected = Object.values(document.paths).reduce(
          (n, item) => n + Object.keys(item).length,
          0,
        );
        expect(operations).toBe(expected);
        expect(await tab.locator('.title').first().textContent()).toContain('Parley API');
        expect(outside).toEqual([]);
        expect(errors).toEqual([]);
      } finally {
        await browser.close();
      }
    },
    60_000,
  );
});
