// cuid2 ids (SPEC §4), generated with Node's native crypto. Same construction as
// @paralleldrive/cuid2 — a random letter, then SHA3-512 of time + random salt + counter + host
// fingerprint in base 36 — but the library hashes in JavaScript, converts with bignumber.js
// and draws each salt character with its own getRandomValues call: 14% of a busy server's CPU
// went to ids (bench/README.md). Here they cost a native hash and one BigInt conversion.
import { createHash, randomFillSync } from 'node:crypto';

const LENGTH = 24;
const FINGERPRINT_LENGTH = 32;
const INITIAL_COUNT_MAX = 476_782_367;

// Random bytes drawn in blocks, so most ids need no call into the random source at all.
const pool = Buffer.alloc(4096);
let offset = pool.length;
function randomByte(): number {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  return pool[offset++]!;
}

/** A uniform integer in [0, n) for n ≤ 256, by rejection sampling (no modulo bias). */
function randomBelow(n: number): number {
  const limit = 256 - (256 % n);
  for (;;) {
    const byte = randomByte();
    if (byte < limit) return byte % n;
  }
}

const entropy = (length: number) =>
  Array.from({ length }, () => randomBelow(36).toString(36)).join('');

/** SHA3-512 in base 36, minus the first digit (it biases the histogram, as cuid2 notes). */
const hash = (input: string) =>
  BigInt(`0x${createHash('sha3-512').update(input).digest('hex')}`)
    .toString(36)
    .slice(1);

const fingerprint = hash(Object.keys(globalThis).toString() + entropy(FINGERPRINT_LENGTH)).slice(
  0,
  FINGERPRINT_LENGTH,
);
let counter = Math.floor(
  (randomByte() * 65536 + randomByte() * 256 + randomByte()) % INITIAL_COUNT_MAX,
);

export function createId(): string {
  const letter = String.fromCharCode(97 + randomBelow(26));
  const input = Date.now().toString(36) + entropy(LENGTH) + (counter++).toString(36) + fingerprint;
  return letter + hash(input).substring(1, LENGTH);
}
