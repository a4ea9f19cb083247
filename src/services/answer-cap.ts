// Places in the cluster-wide cap of answers per user (SPEC §8 AI_MAX_PENDING_PER_USER), for the
// queue: reserved by the API before anything is stored, released by whoever ends the answer.
// Implemented on Redis (ai/redis-answer-cap.ts); the in-process path uses ai/scheduler.ts.

export interface AnswerCap {
  /** A place for `ticketId` (the answer's generation id); undefined at the cap. */
  reserve(userId: string, ticketId: string): Promise<{ rank: number } | undefined>;
  release(userId: string, ticketId: string): Promise<void>;
  /** Keeps a running answer's place (it would expire otherwise: a process may die holding it). */
  renew(userId: string, ticketId: string): Promise<void>;
}
