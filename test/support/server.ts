// Starts the real app on an ephemeral port against a database of its own, for HTTP tests.
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createServer, type Server } from 'node:http';
import type { Express } from 'express';
import { createApp } from '../../src/app.js';
import { parseEnv, type Config } from '../../src/config/env.js';
import { createContainer, type Container, type ContainerOptions } from '../../src/container.js';
import { createRealtimeGateway, type RealtimeGateway } from '../../src/realtime/gateway.js';
import { ApiClient } from './api-client.js';
import { openTestDatabase } from './database.js';

export const TEST_JWT_SECRET = 'test-secret-for-parley-tests-only-0123456789';

export interface TestServer {
  url: string;
  app: Express;
  gateway: RealtimeGateway;
  api: ApiClient;
  container: Container;
  config: Config;
  close(): Promise<void>;
}

/**
 * Configuration for tests: quiet, cheap argon2id (still argon2id), a DATA_DIR of its own (uploads
 * land there, never in the checkout), plus any overrides.
 */
export function testConfig(overrides: Record<string, string> = {}): Config {
  const env = parseEnv({
    DATA_DIR: mkdtempSync(path.join(tmpdir(), 'parley-data-')),
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    JWT_SECRET: TEST_JWT_SECRET,
    ARGON2_MEMORY_KIB: '4096',
    ARGON2_TIME_COST: '1',
    COLLECT_DEFAULT_METRICS: 'false',
    // No AI answers unless a test asks for them (the AI tests set a provider).
    AI_PROVIDER: 'none',
    ...overrides,
  });
  return Object.freeze({ ...env, JWT_SECRET: env.JWT_SECRET ?? TEST_JWT_SECRET });
}

export async function startTestServer(
  overrides: Record<string, string> = {},
  options: ContainerOptions = {},
): Promise<TestServer> {
  const config = testConfig(overrides);
  const { database, dispose } = await openTestDatabase();
  const container = createContainer(config, database, options);
  const app = createApp(container);
  const server: Server = createServer(app);
  const gateway = createRealtimeGateway(server, container);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    app,
    gateway,
    api: new ApiClient(url),
    container,
    config,
    close: async () => {
      await gateway.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await dispose();
      if (config.DATA_DIR.startsWith(tmpdir()))
        rmSync(config.DATA_DIR, { recursive: true, force: true });
    },
  };
}
