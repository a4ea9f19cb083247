// Two projects run the same API and integration tests: against PGlite always, and against the
// PostgreSQL at TEST_DATABASE_URL when it answers (skipped with a notice when it does not).
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { defineConfig, type ViteUserConfig } from 'vitest/config';
import { LongestFirstSequencer } from './test/support/sequencer.js';

/** The timed `npm start` test: a project of its own (see 'start' below). */
const START_TEST = 'test/cli/server-process.test.ts';

const postgresUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function postgresReachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1500 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Whether redis-server can be started: the Redis and cluster suites start their own. */
function redisServerInstalled(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export default defineConfig(async (): Promise<ViteUserConfig> => {
  const withPostgres = await postgresReachable(postgresUrl);
  const withRedis = redisServerInstalled();
  if (!withRedis && !process.env.PARLEY_REDIS_NOTICE_SHOWN) {
    process.env.PARLEY_REDIS_NOTICE_SHOWN = '1';
    process.stderr.write(
      '\n[parley] redis-server is not installed: the Redis and cluster suites were SKIPPED.\n\n',
    );
  }
  const skipNotice =
    `[parley] PostgreSQL at ${postgresUrl} is not reachable: the PostgreSQL-backed run was SKIPPED; ` +
    'only the PGlite run executed. Start PostgreSQL or set TEST_DATABASE_URL to include it.\n';
  // Vitest evaluates this file more than once; say it once at the start and once at the end.
  if (!withPostgres && !process.env.PARLEY_SKIP_NOTICE_SHOWN) {
    process.env.PARLEY_SKIP_NOTICE_SHOWN = '1';
    process.stderr.write(`\n${skipNotice}\n`);
  }
  const skipReporter = { onTestRunEnd: () => void process.stderr.write(`\n${skipNotice}`) };
  const databaseTests = ['test/api/**/*.test.ts', 'test/integration/**/*.test.ts'];
  // Suites about what a client sees whatever the database: once, on PGlite.
  const pgliteOnly = [
    'test/api/client.test.ts',
    'test/api/openapi.test.ts',
    'test/api/web-csp.test.ts',
  ];
  return {
    test: {
      testTimeout: 30_000,
      hookTimeout: 60_000,
      pool: 'forks',
      maxWorkers: 3,
      sequence: { sequencer: LongestFirstSequencer },
      reporters: ['default', 'json', ...(withPostgres ? [] : [skipReporter])],
      outputFile: { json: 'reports/vitest.json' },
      env: { TEST_DATABASE_URL: postgresUrl },
      projects: [
        {
          extends: true as const,
          test: {
            name: 'pglite',
            include: [...databaseTests, 'test/unit/**/*.test.ts'],
            globalSetup: ['test/support/global-pglite.ts'],
          },
        },
        {
          // `npm start` timed (/health within 10 s) after the in-process suites, alone: nothing
          // else loads the machine, and its rebuild of dist/ is over before servers start from it.
          extends: true as const,
          test: {
            name: 'start',
            include: [START_TEST],
            globalSetup: ['test/support/global-build.ts'],
            sequence: { groupOrder: 1 },
          },
        },
        {
          // Real server processes from dist/ (signals, kills, the default model), after 'start'.
          extends: true as const,
          test: {
            name: 'process',
            include: ['test/cli/**/*.test.ts'],
            exclude: [START_TEST],
            globalSetup: ['test/support/global-build.ts'],
            sequence: { groupOrder: 2 },
          },
        },
        {
          // The web client in headless Chromium against a real server (skipped, saying so, when
          // /usr/bin/chromium is missing), beside the other real-process suites.
          extends: true as const,
          test: {
            name: 'browser',
            include: ['test/browser/**/*.test.ts'],
            globalSetup: ['test/support/global-pglite.ts'],
            sequence: { groupOrder: 2 },
            testTimeout: 30_000,
          },
        },
        ...(withRedis
          ? [
              {
                // Redis-backed parts against a redis-server each file starts on a free port.
                extends: true as const,
                test: { name: 'redis', include: ['test/redis/**/*.test.ts'] },
              },
            ]
          : []),
        ...(withRedis && withPostgres
          ? [
              {
                // Real processes: API instances and workers on PostgreSQL and a redis-server of
                // the test's own (SPEC §2 scale-out).
                extends: true as const,
                test: {
                  name: 'cluster',
                  include: ['test/cluster/**/*.test.ts'],
                  globalSetup: [
                    'test/support/global-cluster-build.ts',
                    'test/support/global-postgres.ts',
                  ],
                  sequence: { groupOrder: 2 },
                  testTimeout: 90_000,
                },
              },
            ]
          : []),
        ...(withPostgres
          ? [
              {
                extends: true as const,
                test: {
                  name: 'postgres',
                  include: databaseTests,
                  exclude: pgliteOnly,
                  globalSetup: ['test/support/global-postgres.ts'],
                },
              },
            ]
          : []),
      ],
    },
  };
});
