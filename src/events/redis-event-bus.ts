// The domain event bus of a cluster (scale-out): `subscribe` handlers run once, where the event
// was published (room emits go through the Socket.IO adapter, which reaches every instance by
// itself: sending them over here too would deliver each N times); `subscribeEverywhere` handlers
// run in every process, the event crossing Redis on one channel for that.
import type { Redis } from 'ioredis';
import {
  createInProcessEventBus,
  type DomainEventName,
  type DomainEvents,
  type EventBus,
} from './event-bus.js';

export const CLUSTER_EVENTS_CHANNEL = 'parley:events';
/** Pub/sub messages are delivered whole to every subscriber's buffer: keep them small. */
export const MAX_CLUSTER_EVENT_BYTES = 64 * 1024;

interface Envelope {
  /** The publishing process, which has delivered the event to its own handlers already. */
  origin: string;
  event: DomainEventName;
  payload: unknown;
}

export interface RedisEventBus extends EventBus {
  /** Starts listening to the other processes' events (resolves once subscribed). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createRedisEventBus(options: {
  command: Redis;
  subscriber: Redis;
  /** This process's id, unique in the cluster. */
  origin: string;
  onError: (error: unknown, event: DomainEventName | 'redis') => void;
}): RedisEventBus {
  const { command, subscriber, origin, onError } = options;
  const here = createInProcessEventBus(onError);
  const everywhere = createInProcessEventBus(onError);
  const crossing = new Set<DomainEventName>();

  const onMessage = (channel: string, raw: string) => {
    if (channel !== CLUSTER_EVENTS_CHANNEL) return;
    let envelope: Envelope;
    try {
      envelope = JSON.parse(raw) as Envelope;
    } catch (error) {
      onError(error, 'redis');
      return;
    }
    if (envelope.origin === origin) return;
    everywhere.publish(envelope.event, envelope.payload as DomainEvents[DomainEventName]);
  };

  return {
    publish(event, payload) {
      here.publish(event, payload);
      everywhere.publish(event, payload);
      if (!crossing.has(event)) return;
      const message = JSON.stringify({ origin, event, payload } satisfies Envelope);
      if (Buffer.byteLength(message) > MAX_CLUSTER_EVENT_BYTES) {
        onError(new Error(`${event} is too large to cross the cluster`), event);
        return;
      }
      command
        .publish(CLUSTER_EVENTS_CHANNEL, message)
        .catch((error: unknown) => onError(error, event));
    },
    subscribe: (event, handler) => here.subscribe(event, handler),
    subscribeEverywhere(event, handler) {
      crossing.add(event);
      return everywhere.subscribe(event, handler);
    },
    async start() {
      subscriber.on('message', onMessage);
      await subscriber.subscribe(CLUSTER_EVENTS_CHANNEL);
    },
    async stop() {
      subscriber.off('message', onMessage);
      // Only when connected: queued offline, the command would hold up the connection's QUIT.
      if (subscriber.status === 'ready')
        await subscriber.unsubscribe(CLUSTER_EVENTS_CHANNEL).catch(() => undefined);
    },
  };
}
