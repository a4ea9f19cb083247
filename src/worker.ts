// Entry point of `npm run worker` (scale-out, SPEC §2): runs generation jobs from the queue, no
// HTTP. Needs REDIS_URL and a PostgreSQL DATABASE_URL shared with the API instances. What it
// publishes for clients (a conversation's new title) reaches them through the Socket.IO Redis
// adapter; the answers' tokens go through their Redis streams.
import { createAdapter } from '@socket.io/redis-adapter';
import { Server } from 'socket.io';
import { loadConfigOrExit } from './config/load-or-exit.js';
import { createContainer } from './container.js';
import { openDatabase, targetFromConfig } from './db/client.js';
import { bridgeDomainEvents } from './realtime/broadcaster.js';
import { createRoomEmitter } from './realtime/large-emit.js';
import type { ParleyServer } from './realtime/types.js';
import { createLogger, describeError } from './utils/logger.js';
import { startAnswerWorkerOf } from './worker-jobs.js';

/** How long running answers may go on after SIGTERM before they are stopped. */
const GENERATION_GRACE_MS = 5_000;

async function main(): Promise<void> {
  const config = loadConfigOrExit('Parley worker');
  const target = targetFromConfig(config);
  if (!config.REDIS_URL || target.kind !== 'postgres') {
    process.stderr.write(
      'Parley worker cannot start. It needs REDIS_URL and DATABASE_URL (a postgres:// URL) shared ' +
        'with the API instances; without them the API answers in its own process.\n',
    );
    process.exit(1);
  }
  if (config.AI_PROVIDER === 'none') {
    process.stderr.write(
      'Parley worker cannot start. AI_PROVIDER=none: there is nothing to run.\n',
    );
    process.exit(1);
  }
  const logger = createLogger({ level: config.LOG_LEVEL, json: config.NODE_ENV === 'production' });
  const database = await openDatabase(target, (error) =>
    logger.error('Idle database client failed', describeError(error)),
  );
  await database.migrate();
  const container = createContainer(config, database, { logger });
  await container.start();
  const redis = container.redis!;
  // A Socket.IO server with no HTTP server and no sockets: its emits go through the adapter to
  // the instances' rooms, so the broadcaster works here as in an API instance.
  const io: ParleyServer = new Server();
  const { pub, sub } = redis.adapterClients();
  io.adapter(createAdapter(pub, sub));
  const unbridge = bridgeDomainEvents(
    io,
    container.events,
    container.metrics,
    createRoomEmitter(io, redis.command, logger),
  );
  const worker = startAnswerWorkerOf(container);
  logger.info(`Parley worker ready (${container.instanceId}; AI: ${container.provider?.name})`);

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info(`${signal} received: finishing running answers`);
    const force = setTimeout(() => process.exit(1), config.SHUTDOWN_TIMEOUT);
    force.unref();
    void (async () => {
      // Stop taking jobs, let the running answers finish (stopped after the grace period).
      await Promise.all([worker?.close(), container.answerJobs?.drain(GENERATION_GRACE_MS)]);
      unbridge();
      // No HTTP server, so no engine for io.close() to close: only the adapter has connections.
      await io.of('/').adapter.close();
      await container.close();
      logger.info('Worker shutdown complete');
      process.exit(0);
    })().catch((error: unknown) => {
      logger.error('Error while closing', describeError(error));
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('unhandledRejection', (reason) => {
    logger.error('Unhandled promise rejection', describeError(reason));
  });
}

main().catch((error: unknown) => {
  process.stderr.write(
    `Parley worker failed to start: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exit(1);
});
