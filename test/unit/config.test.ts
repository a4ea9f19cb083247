import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseEnv } from '../../src/config/env.js';
import { loadConfig } from '../../src/config/load.js';

function problemsOf(source: Record<string, string>): string[] {
  try {
    parseEnv(source);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('parseEnv', () => {
  it('applies the defaults of SPEC §3', () => {
    const env = parseEnv({});
    expect(env).toMatchObject({
      PORT: 3000,
      HOST: '0.0.0.0',
      NODE_ENV: 'development',
      DATA_DIR: './data',
      JWT_ACCESS_TTL: 15 * 60_000,
      JWT_REFRESH_TTL: 30 * 24 * 3600_000,
      FRONTEND_URL: ['http://localhost:3000'],
      LOG_LEVEL: 'info',
      LOGIN_MAX_FAILURES_PER_EMAIL_IP: 5,
      LOGIN_MAX_FAILURES_PER_IP: 100,
      LOGIN_FAILURE_WINDOW: 15 * 60_000,
      REGISTER_MAX_PER_IP: 100,
      REGISTER_WINDOW: 3600_000,
    });
    expect(env.DATABASE_URL).toBeUndefined();
    expect(Object.isFrozen(env)).toBe(true);
  });

  it('names the variable that is wrong', () => {
    expect(problemsOf({ PORT: 'abc' })).toEqual([expect.stringMatching(/^PORT: /)]);
    expect(problemsOf({ PORT: '70000' })).toEqual([expect.stringMatching(/^PORT: /)]);
    expect(problemsOf({ JWT_ACCESS_TTL: 'soon' })).toEqual([
      expect.stringMatching(/^JWT_ACCESS_TTL: .*duration/),
    ]);
    expect(problemsOf({ DATABASE_URL: 'mysql://x' })).toEqual([
      expect.stringMatching(/^DATABASE_URL: /),
    ]);
    expect(problemsOf({ LOG_LEVEL: 'loud' })).toEqual([expect.stringMatching(/^LOG_LEVEL: /)]);
    expect(problemsOf({ JWT_SECRET: 'short' })).toEqual([
      expect.stringMatching(/^JWT_SECRET: .*32/),
    ]);
  });

  it('reports every bad variable at once', () => {
    expect(problemsOf({ PORT: 'x', BODY_LIMIT: 'huge' })).toHaveLength(2);
  });

  it('refuses production without a JWT_SECRET and says why', () => {
    const problems = problemsOf({ NODE_ENV: 'production' });
    expect(problems).toEqual([
      expect.stringMatching(/^JWT_SECRET: is required when NODE_ENV=production/),
    ]);
    expect(() => parseEnv({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) })).not.toThrow();
  });

  it('treats empty strings as unset and splits FRONTEND_URL', () => {
    const env = parseEnv({ PORT: '', FRONTEND_URL: 'https://a.example, https://b.example' });
    expect(env.PORT).toBe(3000);
    expect(env.FRONTEND_URL).toEqual(['https://a.example', 'https://b.example']);
  });

  it('accepts memory:// and postgres URLs', () => {
    expect(parseEnv({ DATABASE_URL: 'memory://' }).DATABASE_URL).toBe('memory://');
    expect(parseEnv({ DATABASE_URL: 'postgres://u@h/db' }).DATABASE_URL).toBe('postgres://u@h/db');
  });
});

describe('loadConfig', () => {
  it('generates a development JWT secret once, keeps it private in DATA_DIR, and reuses it', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'parley-config-'));
    const saved = { ...process.env };
    try {
      delete process.env.JWT_SECRET;
      process.env.DATA_DIR = dataDir;
      process.env.NODE_ENV = 'development';
      const first = loadConfig('/nonexistent/.env');
      const second = loadConfig('/nonexistent/.env');
      expect(first.JWT_SECRET.length).toBeGreaterThanOrEqual(32);
      expect(second.JWT_SECRET).toBe(first.JWT_SECRET);
      const file = path.join(dataDir, 'jwt-secret');
      expect((await readFile(file, 'utf8')).trim()).toBe(first.JWT_SECRET);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
    } finally {
      process.env = saved;
    }
  });
});
