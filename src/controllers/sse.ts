// Server-Sent Events for a generation (SPEC §7): `id: <seq>`, `event: start|delta|end|error`, and
// the same JSON payload the socket events carry; closed after end or error.
import type { Request, Response } from 'express';
import type { GenerationEvent } from '../ai/generation-log.js';

const HEARTBEAT_MS = 15_000;

const NAMES: Record<GenerationEvent['type'], string> = {
  start: 'start',
  delta: 'delta',
  end: 'end',
  error: 'error',
};

function payloadOf(event: GenerationEvent): unknown {
  const { type: _type, ...rest } = event;
  return rest;
}

/**
 * The seq a client resumes after: Last-Event-ID, else ?lastEventId, else from the start. An empty
 * (or blank) value counts as absent: Number('') is 0, which would skip the start event (seq 0).
 */
export function resumePoint(req: Request): number {
  const given = (value: unknown) =>
    typeof value === 'string' && value.trim() !== '' ? value : undefined;
  const raw = given(req.get('last-event-id')) ?? given(req.query.lastEventId);
  const seq = raw === undefined ? NaN : Number(raw);
  return Number.isInteger(seq) && seq >= -1 ? seq : -1;
}

/**
 * Streams a generation to the response. `follow` replays events after `afterSeq` and then calls
 * back with each new one; it returns the function that stops following.
 */
export function streamGeneration(
  req: Request,
  res: Response,
  follow: (listener: (event: GenerationEvent) => void, lost: () => void) => Promise<() => void>,
  status = 200,
): void {
  res.status(status);
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-cache, no-transform');
  res.setHeader('Connection', 'keep-alive');
  res.setHeader('X-Accel-Buffering', 'no'); // nginx: do not buffer the stream
  res.flushHeaders();
  let open = true;
  // Filled in once follow() resolves: a finished generation ends during follow's own replay,
  // before there is anything to unfollow.
  const following: { stop?: () => void } = {};
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
  heartbeat.unref();
  const close = () => {
    if (!open) return;
    open = false;
    clearInterval(heartbeat);
    following.stop?.();
  };
  const end = () => {
    if (!open) return;
    close();
    res.end();
  };
  req.on('close', close);
  follow(
    (event) => {
      if (!open) return;
      res.write(
        `id: ${event.seq}\nevent: ${NAMES[event.type]}\ndata: ${JSON.stringify(payloadOf(event))}\n\n`,
      );
      if (event.type === 'end' || event.type === 'error') end();
    },
    // The caller may no longer see this conversation: nothing more, at once. (An EventSource
    // reconnecting then gets 403 or 404 and stops.)
    end,
  ).then(
    (stop) => {
      following.stop = stop;
      if (!open) stop();
    },
    // The log could not be read (Redis away): the client reconnects with its Last-Event-ID.
    end,
  );
}
