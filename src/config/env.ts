// Parses the environment once into a frozen, typed configuration; a bad value stops the start
// with a message that names the variable. Pure: reading `.env` and generated secrets live in
// config/load.ts, so tests can build a configuration from a plain object.
import { availableParallelism } from 'node:os';
import ms from 'ms';
import { z } from 'zod';

const duration = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((value, ctx) => {
      const millis = ms(value as ms.StringValue) as number | undefined;
      if (typeof millis !== 'number' || !Number.isFinite(millis) || millis <= 0) {
        ctx.addIssue({
          code: 'custom',
          message: `"${value}" is not a duration such as 15m, 1h, 30d`,
        });
        return z.NEVER;
      }
      return millis;
    });

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const booleanish = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default(fallback ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');

const EnvSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    HOST: z.string().min(1).default('0.0.0.0'),
    DATA_DIR: z.string().min(1).default('./data'),
    // The built web client (`npm run build` writes dist/web); unset: dist/web beside the code.
    WEB_DIR: z.string().min(1).optional(),
    DATABASE_URL: z
      .string()
      .refine((v) => v === 'memory://' || /^postgres(ql)?:\/\//.test(v), {
        message: 'must be memory:// or a postgres:// URL (leave unset for PGlite in DATA_DIR)',
      })
      .optional(),
    DATABASE_POOL_SIZE: positiveInt(10),
    // Scale-out (SPEC §2): unset runs everything in-process; set, the cache, rate limits,
    // presence, the event bus, the Socket.IO adapter, the generation queue (BullMQ), the
    // answers' token streams and stop signals live in Redis, shared by every instance.
    REDIS_URL: z
      .string()
      .refine((v) => /^rediss?:\/\//.test(v), { message: 'must be a redis:// or rediss:// URL' })
      .optional(),
    // With Redis: whether API instances run generation jobs too (else only `npm run worker`).
    WORKERS_INLINE: booleanish(true),
    // With Redis: generation jobs one worker process runs at once. Unset: as AI_CONCURRENCY.
    WORKER_CONCURRENCY: z.coerce.number().int().positive().optional(),
    // With Redis: a running answer's lease; a process that stops renewing it (killed) has its
    // answers failed by another this long after its last renewal.
    GENERATION_LEASE: duration('15s'),
    JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
    JWT_ACCESS_TTL: duration('15m'),
    JWT_REFRESH_TTL: duration('30d'),
    FRONTEND_URL: z
      .string()
      .default('http://localhost:3000')
      .transform((v) =>
        v
          .split(',')
          .map((origin) => origin.trim())
          .filter(Boolean),
      ),
    LOG_LEVEL: z
      .enum(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly', 'silent'])
      .default('info'),
    METRICS_TOKEN: z.string().min(1).optional(),
    // Express's "trust proxy": false, true, a hop count, or a list of trusted addresses.
    TRUST_PROXY: z
      .string()
      .default('false')
      .transform((v): boolean | number | string =>
        v === 'true' ? true : v === 'false' ? false : /^\d+$/.test(v) ? Number(v) : v,
      ),
    BODY_LIMIT: z
      .string()
      .regex(/^\d+(b|kb|mb)$/i, 'must be a size such as 256kb or 1mb')
      .default('256kb'),
    SHUTDOWN_TIMEOUT: duration('10s'),
    // argon2id cost (OWASP's second recommended setting: 19 MiB, 2 passes, 1 lane).
    ARGON2_MEMORY_KIB: z.coerce.number().int().min(1024).default(19456),
    ARGON2_TIME_COST: z.coerce.number().int().min(1).default(2),
    // Hashes computed at once (default: one per core; more starves the event loop).
    ARGON2_CONCURRENCY: positiveInt(availableParallelism()),
    LOGIN_MAX_FAILURES_PER_EMAIL_IP: positiveInt(5),
    LOGIN_MAX_FAILURES_PER_IP: positiveInt(100),
    LOGIN_FAILURE_WINDOW: duration('15m'),
    REGISTER_MAX_PER_IP: positiveInt(100),
    REGISTER_WINDOW: duration('1h'),
    // Messages a user may send per window, over HTTP and Socket.IO together (SPEC §5: 30/min).
    MESSAGE_RATE_LIMIT: positiveInt(30),
    MESSAGE_RATE_WINDOW: duration('1m'),
    // Searches a user may run per window, both search routes together (SPEC §8).
    SEARCH_RATE_LIMIT: positiveInt(60),
    SEARCH_RATE_WINDOW: duration('1m'),
    // A user's searches running at once; more wait their turn (a burst cannot fill the database).
    SEARCH_CONCURRENCY_PER_USER: positiveInt(1),
    // Username lookups a user may make per window (GET /api/users/lookup): enough to add people,
    // too few to enumerate accounts.
    LOOKUP_RATE_LIMIT: positiveInt(30),
    LOOKUP_RATE_WINDOW: duration('1m'),
    // PostgreSQL cancels a search statement running longer than this (503 to the caller).
    SEARCH_STATEMENT_TIMEOUT: duration('2s'),
    COLLECT_DEFAULT_METRICS: booleanish(true),
    // Sockets one user may have open (on all instances); more are refused at the handshake.
    SOCKETS_MAX_PER_USER: positiveInt(20),
    // AI (SPEC §3, §7). Unset AI_PROVIDER: openai when OPENAI_API_KEY or OPENAI_BASE_URL is set,
    // else local; `none` turns AI answers off.
    AI_PROVIDER: z.enum(['local', 'openai', 'none']).optional(),
    OPENAI_API_KEY: z.string().min(1).optional(),
    OPENAI_BASE_URL: z.url().optional(),
    AI_MODEL: z.string().min(1).optional(),
    AI_MODEL_PATH: z.string().min(1).optional(),
    // A ceiling: conversation settings cannot raise it (SPEC §8).
    AI_MAX_OUTPUT_TOKENS: positiveInt(1024),
    // The models a conversation may choose, comma-separated; unset: only the default model.
    AI_MODELS: z
      .string()
      .transform((v) =>
        v
          .split(',')
          .map((model) => model.trim())
          .filter(Boolean),
      )
      .optional(),
    // Answers a user may have running or waiting at once; more is a 429 (SPEC §8).
    AI_MAX_PENDING_PER_USER: positiveInt(3),
    // Answers this process generates at once; the rest wait their (fair) turn. Unset: the local
    // model's AI_LOCAL_PARALLEL, or 32 for an OpenAI-compatible server.
    AI_CONCURRENCY: z.coerce.number().int().positive().optional(),
    AI_TIMEOUT: duration('60s'),
    AI_MAX_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
    // The context window of OpenAI-compatible models (their API does not say).
    AI_CONTEXT_WINDOW: positiveInt(128_000),
    // Whether OpenAI-compatible models take images (image parts); false: images are named in text.
    AI_VISION: booleanish(true),
    AI_LOCAL_THREADS: positiveInt(Math.max(1, availableParallelism() - 1)),
    AI_LOCAL_PARALLEL: positiveInt(2),
    // Unset: the model's training context, at most 4096. Set: exactly this many tokens, even past
    // the training context (llama.cpp allows it and warns; so do we).
    AI_LOCAL_CONTEXT: z.coerce.number().int().positive().optional(),
    AI_TITLES: booleanish(true),
    // Attachments (SPEC §5): where uploads live. `local` keeps them under DATA_DIR/uploads (one
    // machine, or a volume every instance mounts); `s3` in any S3-compatible bucket.
    STORAGE: z.enum(['local', 's3']).default('local'),
    S3_BUCKET: z.string().min(1).optional(),
    S3_ENDPOINT: z.url().optional(),
    S3_REGION: z.string().min(1).default('us-east-1'),
    S3_ACCESS_KEY_ID: z.string().min(1).optional(),
    S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
    // Path-style URLs (endpoint/bucket/key): what MinIO and most self-hosted stores want.
    S3_FORCE_PATH_STYLE: booleanish(false),
    // Largest upload accepted; a larger one is refused (413) as soon as it crosses this.
    UPLOAD_MAX_BYTES: positiveInt(20 * 1024 * 1024),
    // Uploads a user may start per window.
    UPLOAD_RATE_LIMIT: positiveInt(30),
    UPLOAD_RATE_WINDOW: duration('1m'),
    // How long a presigned S3 link (the redirect of GET /api/attachments/:id/content) works.
    UPLOAD_URL_TTL: duration('5m'),
    // An upload no message used after this long is removed by the cleanup job.
    UPLOAD_UNATTACHED_TTL: duration('24h'),
    // How often the cleanup job runs (unattached uploads, deleted messages' files, leftovers).
    UPLOAD_CLEANUP_INTERVAL: duration('1h'),
  })
  .superRefine((env, ctx) => {
    if (env.STORAGE === 's3' && !env.S3_BUCKET) {
      ctx.addIssue({ code: 'custom', path: ['S3_BUCKET'], message: 'is required when STORAGE=s3' });
    }
    if (env.NODE_ENV === 'production' && !env.JWT_SECRET) {
      ctx.addIssue({
        code: 'custom',
        path: ['JWT_SECRET'],
        message:
          'is required when NODE_ENV=production (at least 32 random characters, e.g. `openssl rand -base64 48`); ' +
          'a generated secret is only for development',
      });
    }
  });

export type Env = Readonly<
  Omit<z.infer<typeof EnvSchema>, 'AI_PROVIDER'> & { AI_PROVIDER: 'local' | 'openai' | 'none' }
>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses a set of variables (process.env by default); empty strings count as unset. */
export function parseEnv(source: Record<string, string | undefined> = process.env): Env {
  const present = Object.fromEntries(
    Object.entries(source).filter(([, value]) => value !== undefined && value !== ''),
  );
  const result = EnvSchema.safeParse(present);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map(
        (issue) => `${issue.path.join('.') || 'environment'}: ${issue.message}`,
      ),
    );
  }
  const env = result.data;
  const aiProvider =
    env.AI_PROVIDER ?? (env.OPENAI_API_KEY || env.OPENAI_BASE_URL ? 'openai' : 'local');
  return Object.freeze({ ...env, AI_PROVIDER: aiProvider });
}

/** The configuration the app runs with: the environment plus a resolved JWT secret. */
export type Config = Readonly<Env & { JWT_SECRET: string }>;
