// A logger that keeps every entry in memory, formatted as production formats it, so a test can
// check what the server logged (and what it did not).
import Transport from 'winston-transport';
import { createLogger, type Logger } from '../../src/utils/logger.js';

class MemoryTransport extends Transport {
  readonly entries: Array<Record<string, unknown>> = [];
  override log(info: Record<string, unknown>, next: () => void) {
    this.entries.push(info);
    next();
  }
}

export function capturingLogger(): { logger: Logger; entries: Array<Record<string, unknown>> } {
  const transport = new MemoryTransport();
  const logger = createLogger({ level: 'silly', json: true, transports: [transport] });
  // The console transport stays quiet in tests; the memory transport sees every line.
  logger.transports[0]!.silent = true;
  return { logger, entries: transport.entries };
}
