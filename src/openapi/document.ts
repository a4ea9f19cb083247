// Builds the OpenAPI 3.1 document by walking the Express router: every mounted route, with
// the schemas and errors its handlers registered (route-meta.ts).
import type { Express } from 'express';
import { z } from 'zod';
import {
  createDocument,
  type ZodOpenApiOperationObject,
  type ZodOpenApiPathsObject,
} from 'zod-openapi';
import { ERROR_STATUS, type ErrorCode } from '../errors.js';
import { Envelope, ErrorEnvelope } from '../schemas/common.schemas.js';
import { mergeMeta, metaOf, type OperationMeta } from './route-meta.js';

export interface RouteEntry {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** Express syntax, mount path included: /api/chat/messages/:id */
  path: string;
  meta: OperationMeta;
}

interface Layer {
  rawPath?: unknown;
  route?: { path: unknown; methods: Record<string, boolean>; stack: Layer[] };
  handle?: { stack?: Layer[] } & ((...args: never[]) => unknown);
}

/** Every route the app answers, read from the router's own stack. */
export function listRoutes(app: Express): RouteEntry[] {
  const routes: RouteEntry[] = [];
  const walk = (stack: Layer[], prefix: string, inherited: OperationMeta) => {
    let carried = inherited;
    for (const layer of stack) {
      if (layer.route && typeof layer.route.path === 'string') {
        const meta = layer.route.stack.reduce<OperationMeta>(
          (acc, l) => mergeMeta(acc, metaOf(l.handle) ?? {}),
          carried,
        );
        for (const method of Object.keys(layer.route.methods)) {
          if (method === '_all') continue;
          routes.push({
            method: method as RouteEntry['method'],
            path: join(prefix, layer.route.path),
            meta,
          });
        }
      } else if (layer.handle?.stack) {
        const mount = typeof layer.rawPath === 'string' ? layer.rawPath : '';
        walk(layer.handle.stack, join(prefix, mount), carried);
      } else if (layer.handle) {
        // router.use(requireAuth) and the like apply to every route after them.
        const meta = metaOf(layer.handle);
        if (meta) carried = mergeMeta(carried, meta);
      }
    }
  };
  walk((app.router as unknown as { stack: Layer[] }).stack, '', {});
  return routes;
}

const join = (a: string, b: string) =>
  `${a.replace(/\/$/, '')}/${b.replace(/^\//, '')}`.replace(/\/$/, '') || '/';

const toOpenApiPath = (path: string) => path.replace(/:(\w+)/g, '{$1}');

const operationIdOf = (route: RouteEntry) =>
  route.meta.operationId ??
  `${route.method}${route.path
    .split('/')
    .filter(Boolean)
    .map((part) => (part.startsWith(':') ? `By${cap(part.slice(1))}` : cap(part)))
    .join('')}`;

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1).replace(/[^a-zA-Z0-9]/g, '');

function operation(route: RouteEntry): ZodOpenApiOperationObject {
  const { meta } = route;
  const success = meta.success ?? { status: 200 };
  const errors = new Set<ErrorCode>([...(meta.errors ?? []), 'INTERNAL']);
  const responses: ZodOpenApiOperationObject['responses'] = {
    [String(success.status)]: {
      description: success.description ?? 'Success',
      ...(success.schema
        ? {
            content: {
              [success.contentType ?? 'application/json']: {
                schema: success.raw ? success.schema : Envelope(success.schema),
              },
            },
          }
        : {}),
    },
  };
  for (const code of errors) {
    const status = String(ERROR_STATUS[code]) as `${4 | 5}${string}`;
    const existing = responses[status] as { description: string } | undefined;
    responses[status] = {
      description: existing ? `${existing.description}, ${code}` : code,
      content: { 'application/json': { schema: ErrorEnvelope } },
      ...(code === 'RATE_LIMITED'
        ? {
            headers: z.object({
              'Retry-After': z.string().meta({ description: 'Seconds to wait' }),
            }),
          }
        : {}),
    };
  }
  const request = meta.request ?? {};
  return {
    operationId: operationIdOf(route),
    summary: meta.summary,
    description: meta.description,
    tags: meta.tags ?? [tagOf(route.path)],
    ...(meta.bearer ? { security: [{ bearerAuth: [] }] } : {}),
    ...(request.params || request.query
      ? {
          requestParams: {
            ...(request.params ? { path: request.params as z.ZodObject } : {}),
            ...(request.query ? { query: request.query as z.ZodObject } : {}),
          },
        }
      : {}),
    ...(request.body
      ? {
          requestBody: {
            required: true,
            content: {
              [meta.multipart ? 'multipart/form-data' : 'application/json']: {
                schema: request.body,
              },
            },
          },
        }
      : {}),
    responses,
  };
}

function tagOf(path: string): string {
  const [, api, resource] = path.split('/');
  return api === 'api' && resource ? resource : 'operations';
}

export function buildOpenApiDocument(app: Express, version: string) {
  const paths: ZodOpenApiPathsObject = {};
  for (const route of listRoutes(app)) {
    const key = toOpenApiPath(route.path);
    paths[key] = { ...paths[key], [route.method]: operation(route) };
  }
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'Parley API',
      version,
      description:
        'AI chat backend: accounts, conversations, messages, search. Every JSON response is ' +
        '`{"success": true, "data": …}` or `{"success": false, "error", "code", "details"?}`.',
    },
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
    },
    paths,
  });
}
