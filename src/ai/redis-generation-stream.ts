// How a generation's events are kept in Redis (scale-out): one stream per generation, one pub/sub
// channel to hear new entries at once, and how an entry is written and read back. Shared by the
// producer side (RedisGenerationLog's appends) and the follower side (the mirrors).
import type { Redis } from 'ioredis';
import type { GenerationEvent } from './generation-log.js';

/** Both keys of a generation carry its id as a hash tag: one Redis Cluster slot. */
export const streamKey = (generationId: string) => `parley:gen:{${generationId}}:log`;
export const liveChannel = (generationId: string) => `parley:gen:{${generationId}}:live`;

/**
 * The entry id of an event: its seq as the id's first part (0-0 is not a valid id, hence -1).
 * So an entry already stored cannot be stored twice (Redis refuses an id not above the last one:
 * a retried XADD whose first reply was lost is harmless), and the entries after a seq are one
 * XRANGE from `${seq + 1}`, with no lookup.
 */
export const entryId = (seq: number) => `${seq}-1`;

/** Redis's answer to an XADD whose id is already in the stream (or below its last). */
export const isAlreadyStored = (error: Error) =>
  /equal or smaller than the target stream top item/i.test(error.message);

/** An event as read back: `at` is when it was appended (epoch ms), for the relay lag. */
export interface StoredEvent {
  event: GenerationEvent;
  at: number;
}

/** A pub/sub message: the event's JSON inside, parsed once by each follower. */
export const liveMessage = (json: string, at: number) => `{"at":${at},"event":${json}}`;

export function parseLiveMessage(raw: string): StoredEvent {
  return JSON.parse(raw) as StoredEvent;
}

/** XRANGE pages: an answer's stream is a few hundred entries; a page bounds one reply. */
const PAGE = 1_000;

/**
 * The stored events with seq ≥ `fromSeq`, in seq order; [] when there are none or the stream does
 * not exist.
 */
export async function readStream(
  command: Redis,
  generationId: string,
  fromSeq: number,
): Promise<StoredEvent[]> {
  const key = streamKey(generationId);
  const events: StoredEvent[] = [];
  let start = fromSeq <= 0 ? '-' : String(Math.ceil(fromSeq));
  for (;;) {
    const entries = await command.xrange(key, start, '+', 'COUNT', PAGE);
    for (const [, fields] of entries) events.push(decode(fields));
    if (entries.length < PAGE) return events;
    start = String(events[events.length - 1]!.event.seq + 1);
  }
}

/** An entry's fields: [`event`, its JSON, `at`, epoch ms]. */
function decode(fields: string[]): StoredEvent {
  let json = '';
  let at = 0;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === 'event') json = fields[i + 1]!;
    else if (fields[i] === 'at') at = Number(fields[i + 1]);
  }
  return { event: JSON.parse(json) as GenerationEvent, at };
}
