// argon2id password hashing. node-argon2 runs each hash on libuv's thread pool, never on the
// event loop, and at most `concurrency` hashes run at once: libuv's 4 threads all hashing on a
// 2-core machine starve the event loop's own thread of CPU (see bench/README.md).
import argon2 from 'argon2';
import { createSemaphore } from './semaphore.js';

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(hash: string, password: string): Promise<boolean>;
  /** Spends the same time as a real verify, for accounts that do not exist. */
  verifyDummy(password: string): Promise<void>;
}

export interface PasswordCost {
  memoryKib: number;
  timeCost: number;
  /** Hashes computed at once; the rest queue. */
  concurrency: number;
}

export function createPasswordHasher(cost: PasswordCost): PasswordHasher {
  const options = {
    type: argon2.argon2id,
    memoryCost: cost.memoryKib,
    timeCost: cost.timeCost,
    parallelism: 1,
  } as const;
  const slots = createSemaphore(cost.concurrency);
  const verify = (hash: string, password: string) =>
    slots.run(async () => {
      try {
        return await argon2.verify(hash, password);
      } catch {
        return false; // a malformed stored hash is a failed login, not a crash
      }
    });
  // Computed lazily once, with the same parameters, so an unknown email costs what a wrong
  // password costs and response times do not tell which emails have accounts.
  let dummyHash: Promise<string> | undefined;
  return {
    hash: (password) => slots.run(() => argon2.hash(password, options)),
    verify,
    verifyDummy: async (password) => {
      dummyHash ??= slots.run(() => argon2.hash('parley-dummy-password', options));
      await verify(await dummyHash, password);
    },
  };
}
