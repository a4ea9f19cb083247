// The configuration of an entry point (server, worker): a bad one stops the process with a
// message naming the variable, not a stack trace.
import { ConfigError, type Config } from './env.js';
import { loadConfig } from './load.js';

export function loadConfigOrExit(what: string): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${what} cannot start. ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}
