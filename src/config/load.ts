// Loads the configuration for a real process: `.env` when present, then the environment,
// then the development JWT secret kept in DATA_DIR when none was given.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv, type Config, type Env } from './env.js';

export function loadConfig(envFile = '.env'): Config {
  // Variables already in the environment win over the file, as with dotenv.
  if (existsSync(envFile)) process.loadEnvFile(envFile);
  const env = parseEnv(process.env);
  return Object.freeze({ ...env, JWT_SECRET: env.JWT_SECRET ?? developmentSecret(env) });
}

/**
 * Outside production a missing JWT_SECRET is generated once and kept in DATA_DIR, so tokens
 * survive restarts without the user configuring anything. Production refuses to start instead
 * (see env.ts): a secret on the data volume is not a secret.
 */
function developmentSecret(env: Env): string {
  const file = path.join(env.DATA_DIR, 'jwt-secret');
  if (existsSync(file)) {
    const stored = readFileSync(file, 'utf8').trim();
    if (stored.length >= 32) return stored;
  }
  mkdirSync(env.DATA_DIR, { recursive: true });
  const secret = randomBytes(48).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}
