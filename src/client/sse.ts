// An answer's SSE stream over fetch (EventSource cannot send the bearer token), resumed with
// Last-Event-ID after a dropped connection, and finished for good at `end` or `error`.
import type { RestClient } from './rest.js';
import type { AnswerEvent } from './types.js';

const TYPES = new Set<string>(['start', 'delta', 'end', 'error']);

export interface StreamOptions {
  /** The last seq already seen: only later events are sent (-1 or absent: from the start). */
  afterSeq?: number;
  signal?: AbortSignal;
  /** Pause before reconnecting after a dropped connection. */
  retryMs?: number;
}

/**
 * Yields a generation's events in order, without gaps or repeats across reconnects; returns after
 * `end` or `error` (or when the server says there is nothing more: 204). Stopping early (break,
 * return) cancels the HTTP stream. A refused stream (StreamRefused) or an event that is not JSON
 * (StreamGarbled) ends it with that error; a dropped connection is resumed.
 */
export async function* streamGeneration(
  rest: RestClient,
  generationId: string,
  options: StreamOptions = {},
): AsyncGenerator<AnswerEvent> {
  let lastSeq = options.afterSeq ?? -1;
  for (let attempt = 0; ; attempt++) {
    options.signal?.throwIfAborted();
    let response: Response | undefined;
    try {
      response = await rest.fetch(
        `/api/chat/generations/${encodeURIComponent(generationId)}/stream`,
        {
          headers: {
            accept: 'text/event-stream',
            ...(lastSeq >= 0 ? { 'last-event-id': String(lastSeq) } : {}),
          },
          signal: options.signal,
        },
      );
      if (response.status === 204) return;
      if (!response.ok || !response.body) {
        const body = (await response.json().catch(() => null)) as { error?: string } | null;
        throw new StreamRefused(response.status, body?.error ?? `HTTP ${response.status}`);
      }
      for await (const event of parseSse(response.body)) {
        const seq = Number(event.id);
        if (Number.isInteger(seq) && seq <= lastSeq) continue;
        if (!TYPES.has(event.event)) continue;
        const answer = { type: event.event, data: parseData(event.data) } as AnswerEvent;
        if (Number.isInteger(seq)) lastSeq = seq;
        yield answer;
        if (answer.type === 'end' || answer.type === 'error') return;
      }
    } catch (error) {
      if (error instanceof StreamRefused || error instanceof StreamGarbled) throw error;
      if (options.signal?.aborted) throw error;
    }
    // The connection dropped before the end: resume after the last event seen.
    await new Promise((resolve) =>
      setTimeout(resolve, options.retryMs ?? Math.min(500 * 2 ** attempt, 5_000)),
    );
  }
}

/** The server answered the stream with an error status (403, 404…): retrying will not help. */
export class StreamRefused extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** An event whose data is not JSON: the same bytes would come again, so it is not retried. */
export class StreamGarbled extends Error {
  constructor(readonly data: string) {
    super('The answer stream sent an event that is not JSON');
  }
}

function parseData(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    throw new StreamGarbled(data);
  }
}

interface RawEvent {
  id: string;
  event: string;
  data: string;
}

/**
 * The text/event-stream framing: blocks separated by a blank line; comments skipped. A consumer
 * that stops before the end cancels the body, so the connection closes instead of staying open.
 */
export async function* parseSse(body: ReadableStream<Uint8Array>): AsyncGenerator<RawEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let current: RawEvent = { id: '', event: 'message', data: '' };
  let hasData = false;
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        finished = true;
        return;
      }
      buffer += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffer.search(/\r\n|\n|\r/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
        if (line === '') {
          if (hasData) yield current;
          current = { id: current.id, event: 'message', data: '' };
          hasData = false;
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') {
          current.data = hasData ? `${current.data}\n${value}` : value;
          hasData = true;
        } else if (field === 'id') current.id = value;
        else if (field === 'event') current.event = value;
      }
    }
  } finally {
    if (finished) reader.releaseLock();
    else await reader.cancel().catch(() => undefined);
  }
}
