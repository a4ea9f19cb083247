// Who gets the AI next (SPEC §8 "cost and fairness"): at most `concurrency` answers generate at
// once in this process, each user has at most `maxPendingPerUser` answers running or waiting, and
// a free slot goes to the waiting user with the fewest answers running, the one served longest
// ago first: one user's queue never holds another user's first answer behind it.

export interface SchedulerOptions {
  /** Answers generating at once. */
  concurrency: number;
  /** Answers one user may have running or waiting (AI_MAX_PENDING_PER_USER). */
  maxPendingPerUser: number;
}

/** One answer's place: counted against its user's cap from `reserve` until `release`. */
export interface Ticket {
  readonly userId: string;
  /** Takes a slot at once when one is free and nobody is waiting; true when it did. */
  startNow(): boolean;
  /** Waits for this answer's turn; rejects when `signal` aborts first (stopped while waiting). */
  started(signal: AbortSignal): Promise<void>;
  /** Done, stopped or never started: frees its slot and its place in the cap. Idempotent. */
  release(): void;
}

export interface SchedulerStats {
  running: number;
  waiting: number;
}

interface Waiter {
  ticket: TicketState;
  grant: () => void;
}

interface TicketState {
  userId: string;
  state: 'reserved' | 'waiting' | 'running' | 'released';
}

export class FairScheduler {
  private running = 0;
  /** Per user: answers reserved, waiting or running (the cap counts these). */
  private readonly pending = new Map<string, number>();
  private readonly runningBy = new Map<string, number>();
  /** When each user was last given a slot (a counter, not a clock: ties cannot happen). */
  private readonly lastServed = new Map<string, number>();
  private served = 0;
  /** Per user, their answers waiting for a slot, oldest first. */
  private readonly waiting = new Map<string, Waiter[]>();

  constructor(private readonly options: SchedulerOptions) {}

  /** A place for one more answer of `userId`, or undefined when the user's cap is reached. */
  reserve(userId: string): Ticket | undefined {
    const pending = this.pending.get(userId) ?? 0;
    if (pending >= this.options.maxPendingPerUser) return undefined;
    this.pending.set(userId, pending + 1);
    const ticket: TicketState = { userId, state: 'reserved' };
    return {
      userId,
      startNow: () => {
        if (ticket.state !== 'reserved') return ticket.state === 'running';
        if (this.running >= this.options.concurrency || this.waiting.size > 0) return false;
        this.grant(ticket);
        return true;
      },
      started: (signal) => this.wait(ticket, signal),
      release: () => this.release(ticket),
    };
  }

  stats(): SchedulerStats {
    let waiting = 0;
    for (const queue of this.waiting.values()) waiting += queue.length;
    return { running: this.running, waiting };
  }

  private wait(ticket: TicketState, signal: AbortSignal): Promise<void> {
    if (ticket.state === 'running') return Promise.resolve();
    if (ticket.state !== 'reserved') return Promise.reject(new Error('ticket already released'));
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.unqueue(waiter);
        reject(signal.reason as Error);
      };
      const waiter: Waiter = {
        ticket,
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      ticket.state = 'waiting';
      const queue = this.waiting.get(ticket.userId);
      if (queue) queue.push(waiter);
      else this.waiting.set(ticket.userId, [waiter]);
      this.pump();
    });
  }

  private release(ticket: TicketState): void {
    if (ticket.state === 'released') return;
    if (ticket.state === 'waiting') {
      // Released while waiting (not through its signal): out of the queue, never granted.
      const queue = this.waiting.get(ticket.userId) ?? [];
      const at = queue.findIndex((waiter) => waiter.ticket === ticket);
      if (at >= 0) queue.splice(at, 1);
      if (queue.length === 0) this.waiting.delete(ticket.userId);
    }
    if (ticket.state === 'running') {
      this.running -= 1;
      const mine = (this.runningBy.get(ticket.userId) ?? 1) - 1;
      if (mine > 0) this.runningBy.set(ticket.userId, mine);
      else this.runningBy.delete(ticket.userId);
    }
    ticket.state = 'released';
    const pending = (this.pending.get(ticket.userId) ?? 1) - 1;
    if (pending > 0) this.pending.set(ticket.userId, pending);
    else {
      this.pending.delete(ticket.userId);
      this.lastServed.delete(ticket.userId);
    }
    this.pump();
  }

  private grant(ticket: TicketState): void {
    ticket.state = 'running';
    this.running += 1;
    this.runningBy.set(ticket.userId, (this.runningBy.get(ticket.userId) ?? 0) + 1);
    this.lastServed.set(ticket.userId, ++this.served);
  }

  /** Hands free slots to waiting users, fewest running first, then longest unserved. */
  private pump(): void {
    while (this.running < this.options.concurrency && this.waiting.size > 0) {
      let next: string | undefined;
      let best: [number, number] = [Infinity, Infinity];
      for (const userId of this.waiting.keys()) {
        const rank: [number, number] = [
          this.runningBy.get(userId) ?? 0,
          this.lastServed.get(userId) ?? -1,
        ];
        if (rank[0] < best[0] || (rank[0] === best[0] && rank[1] < best[1])) {
          best = rank;
          next = userId;
        }
      }
      const queue = this.waiting.get(next!)!;
      const waiter = queue.shift()!;
      if (queue.length === 0) this.waiting.delete(next!);
      this.grant(waiter.ticket);
      waiter.grant();
    }
  }

  private unqueue(waiter: Waiter): void {
    const { ticket } = waiter;
    const queue = this.waiting.get(ticket.userId);
    const at = queue?.indexOf(waiter) ?? -1;
    if (queue && at >= 0) {
      queue.splice(at, 1);
      if (queue.length === 0) this.waiting.delete(ticket.userId);
    }
    ticket.state = 'reserved';
  }
}
