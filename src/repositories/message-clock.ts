// The order of a conversation's messages: see conversationClock.
import { sql } from 'drizzle-orm';
import { conversations } from '../db/schema.js';

/**
 * The next message time of a conversation, set on its row's last_message_at under the row's lock
 * (an UPDATE's SET): the clock, but at least a millisecond after the message before. Messages of
 * a conversation are therefore ordered as their writers got the lock, which is the order they
 * commit in: whoever reads after a message committed sees every message that sorts before it,
 * even when the transactions began the other way round (now() is when a transaction began, and
 * two sends racing for the row would otherwise sort by that, not by when they were written).
 * `floor` is a time the next message must be after as well (an answer's question).
 */
export function conversationClock(floor?: Date) {
  const after = floor
    ? sql`greatest(${conversations.lastMessageAt}, ${floor.toISOString()}::timestamptz)`
    : sql`${conversations.lastMessageAt}`;
  return sql<Date>`greatest(clock_timestamp(), ${after} + interval '1 millisecond')`;
}
