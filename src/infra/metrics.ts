// Prometheus metrics. One registry per app instance, so several apps in one process (tests)
// do not collide on metric names.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  httpRequestDuration: Histogram<'method' | 'route' | 'status_code'>;
  socketsConnected: Gauge;
  socketEventsIn: Counter<'event'>;
  socketEventsOut: Counter<'event'>;
  generations: Counter<'provider' | 'status'>;
  timeToFirstToken: Histogram<'provider'>;
  tokensOut: Counter<'provider'>;
  activeGenerations: Gauge;
  /** Redis connection and command failures (scale-out). */
  redisErrors: Counter<'connection'>;
  /** From a generation event's append to Redis to its emit on this instance (scale-out). */
  streamRelayLag: Histogram;
}

export function createMetrics(options: { collectDefault: boolean }): Metrics {
  const registry = new Registry();
  if (options.collectDefault) collectDefaultMetrics({ register: registry });
  const httpRequestDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration in seconds, by method, route pattern and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const socketsConnected = new Gauge({
    name: 'socketio_connected_sockets',
    help: 'Socket.IO connections open on this instance',
    registers: [registry],
  });
  const socketEventsIn = new Counter({
    name: 'socketio_events_received_total',
    help: 'Socket.IO events received from clients, by event name ("unknown" for others)',
    labelNames: ['event'] as const,
    registers: [registry],
  });
  const socketEventsOut = new Counter({
    name: 'socketio_events_sent_total',
    help: 'Socket.IO events emitted by this instance (one per emit, whatever the audience), by event name',
    labelNames: ['event'] as const,
    registers: [registry],
  });
  const generations = new Counter({
    name: 'ai_generations_total',
    help: 'AI generations finished, by provider and status (completed, stopped, failed)',
    labelNames: ['provider', 'status'] as const,
    registers: [registry],
  });
  const timeToFirstToken = new Histogram({
    name: 'ai_time_to_first_token_seconds',
    help: 'From a generation starting to its first token',
    labelNames: ['provider'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [registry],
  });
  const tokensOut = new Counter({
    name: 'ai_tokens_out_total',
    help: 'Completion tokens generated',
    labelNames: ['provider'] as const,
    registers: [registry],
  });
  const activeGenerations = new Gauge({
    name: 'ai_active_generations',
    help: 'Generations running on this instance',
    registers: [registry],
  });
  const redisErrors = new Counter({
    name: 'redis_errors_total',
    help: 'Redis connection errors and failed commands, by connection',
    labelNames: ['connection'] as const,
    registers: [registry],
  });
  const streamRelayLag = new Histogram({
    name: 'ai_stream_relay_lag_seconds',
    help: "From a generation event's append to its Redis stream to its emit on this instance",
    buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  return {
    registry,
    redisErrors,
    streamRelayLag,
    httpRequestDuration,
    socketsConnected,
    socketEventsIn,
    socketEventsOut,
    generations,
    timeToFirstToken,
    tokensOut,
    activeGenerations,
  };
}
