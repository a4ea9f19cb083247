// Entry point of `npm start`: loads the configuration, opens and migrates the database, serves
// HTTP, and shuts down gracefully on SIGTERM/SIGINT.
import { createServer, type Server } from 'node:http';
import { createApp } from './app.js';
import { loadConfigOrExit } from './config/load-or-exit.js';
import { createContainer, type Container } from './container.js';
import { openDatabase, targetFromConfig } from './db/client.js';
import type { AnswerWorker } from './queue/generation-queue.js';
import { createRealtimeGateway, type RealtimeGateway } from './realtime/gateway.js';
import { startAnswerWorkerOf } from './worker-jobs.js';
import { createLogger, describeError } from './utils/logger.js';

async function main(): Promise<void> {
  const config = loadConfigOrExit('Parley');
  const logger = createLogger({ level: config.LOG_LEVEL, json: config.NODE_ENV === 'production' });
  const started = Date.now();
  const target = targetFromConfig(config);
  const database = await openDatabase(target, (error) =>
    logger.error('Idle database client failed', describeError(error)),
  );
  await database.migrate();
  const container = createContainer(config, database, { logger });
  await container.start();
  // One process owns its answers: those a crashed run left half-written are failed now, never
  // SENDING forever (SPEC §7). With Redis, answers are leased instead, and only expired leases
  // are failed: restarting this instance leaves the others' answers alone.
  if (!container.redis) {
    const interrupted = await container.generations.recoverInterrupted();
    if (interrupted > 0) logger.warn(`${interrupted} interrupted AI answer(s) marked FAILED`);
  }
  const server = createServer(createApp(container));
  const gateway = createRealtimeGateway(server, container);
  const worker = config.WORKERS_INLINE ? startAnswerWorkerOf(container) : undefined;
  server.keepAliveTimeout = 65_000; // longer than common load balancers' idle timeout

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, config.HOST, resolve);
  });
  const where = target.kind === 'pglite' ? (target.dataDir ?? 'memory') : 'PostgreSQL';
  const { provider } = container;
  const ai = provider ? `${provider.name}, ${provider.defaultModel()}` : 'off';
  logger.info(
    `Parley listening on http://${config.HOST}:${config.PORT} (database: ${target.kind}, ${where}; AI: ${ai}; ready in ${Date.now() - started} ms)`,
  );
  installShutdown(server, gateway, container, worker);
}

/** How long running AI answers may go on after SIGTERM before they are stopped. */
const GENERATION_GRACE_MS = 5_000;

function installShutdown(
  server: Server,
  gateway: RealtimeGateway,
  container: Container,
  worker: AnswerWorker | undefined,
): void {
  const { logger, config } = container;
  let shuttingDown = false;
  const shutdown = (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info(`${signal} received: finishing in-flight requests`);
    const force = setTimeout(() => {
      logger.error(`Shutdown took longer than ${config.SHUTDOWN_TIMEOUT} ms; exiting`);
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT);
    force.unref();
    // close() stops accepting connections and waits for in-flight requests. Keep-alive
    // connections are closed as soon as they go idle (a request finishing after the signal
    // leaves its connection open otherwise), so they do not hold the shutdown open.
    const sweep = setInterval(() => server.closeIdleConnections(), 100);
    server.close(() => {
      clearInterval(sweep);
      container
        .close()
        .then(() => {
          logger.info('Shutdown complete');
          process.exit(0);
        })
        .catch((error: unknown) => {
          logger.error('Error while closing', describeError(error));
          process.exit(1);
        });
    });
    server.closeIdleConnections();
    // Running AI answers get a few seconds, then stop with their text kept; their SSE streams
    // (requests in flight) end with them instead of holding the HTTP server open.
    void container.generations.drain(GENERATION_GRACE_MS);
    void container.answerJobs?.drain(GENERATION_GRACE_MS);
    // SSE streams of answers running elsewhere (a worker) do not end with this process's
    // answers: after the grace period they are cut (clients resume with Last-Event-ID).
    setTimeout(() => server.closeAllConnections(), GENERATION_GRACE_MS + 500).unref();
    void worker?.close();
    // Sockets (and long-polling requests) would hold the HTTP server open: close them now.
    gateway
      .close()
      .catch((error: unknown) => logger.error('Closing sockets failed', describeError(error)));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('unhandledRejection', (reason) => {
    logger.error('Unhandled promise rejection', describeError(reason));
  });
}

main().catch((error: unknown) => {
  process.stderr.write(
    `Parley failed to start: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exit(1);
});
