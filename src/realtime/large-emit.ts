// Room emits whose payload is too large for Redis pub/sub (scale-out: a 32,000-character message
// is up to ~130 KB; nothing over 64 KB goes on a channel, where every subscriber must take it
// whole into its buffer). The payload is stored under a key for a minute; only the key crosses,
// and each instance reads it and emits to its own sockets.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { describeError, type Logger } from '../utils/logger.js';
import type { LargeEmit, ServerToClientEvents } from './events.js';
import type { ParleyServer } from './types.js';

/** Payloads over this go through a key, not the channel (the bound is 64 KB with the envelope). */
export const LARGE_PAYLOAD_BYTES = 48 * 1024;
const KEPT_MS = 60_000;

export interface RoomEmitter {
  emit<E extends keyof ServerToClientEvents>(
    target: { rooms: string | string[]; except?: string | string[] },
    event: E,
    payload: Parameters<ServerToClientEvents[E]>[0],
    /** A cheap upper bound of the payload's size in bytes (only then is it measured). */
    sizeHint?: number,
  ): void;
}

const list = (value: string | string[] | undefined) =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

export function createRoomEmitter(
  io: ParleyServer,
  redis: Redis | undefined,
  logger: Logger,
): RoomEmitter {
  const emitTo = (
    operator: Pick<ParleyServer, 'to'>,
    rooms: string[],
    except: string[],
    event: keyof ServerToClientEvents,
    payload: unknown,
  ) =>
    (operator.to(rooms).except(except).emit as (event: string, payload: unknown) => boolean)(
      event,
      payload,
    );
  if (redis) {
    io.on('parley:large-emit', ({ rooms, except, event, key }: LargeEmit) => {
      redis
        .get(key)
        .then((raw) => {
          if (raw !== null) emitTo(io.local, rooms, except, event, JSON.parse(raw));
        })
        .catch((error: unknown) => logger.warn('A large emit was lost', describeError(error)));
    });
  }
  return {
    emit(target, event, payload, sizeHint = 0) {
      const rooms = list(target.rooms);
      const except = list(target.except);
      if (rooms.length === 0) return; // `io.to([])` is every socket, not none
      if (!redis || sizeHint <= LARGE_PAYLOAD_BYTES) {
        emitTo(io, rooms, except, event, payload);
        return;
      }
      const json = JSON.stringify(payload);
      if (Buffer.byteLength(json) <= LARGE_PAYLOAD_BYTES) {
        emitTo(io, rooms, except, event, payload);
        return;
      }
      const key = `parley:payload:${randomUUID()}`;
      emitTo(io.local, rooms, except, event, payload);
      redis
        .set(key, json, 'PX', KEPT_MS)
        .then(() => io.serverSideEmit('parley:large-emit', { rooms, except, event, key }))
        .catch((error: unknown) => logger.warn('A large emit was lost', describeError(error)));
    },
  };
}
