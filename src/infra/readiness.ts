// Dependencies /ready checks (the database, the model provider; Redis later), and what of a
// failure it may show: the part's name and a plain reason, never a path or a raw error (SPEC §8).

export interface ReadinessCheck {
  name: string;
  /**
   * Throws when the dependency cannot serve. An error marked `expose: true` (the http-errors
   * convention; ProviderError is) has a message written for anyone to read, and /ready shows it;
   * any other error shows as "unavailable" and its text goes to the log.
   */
  check(): Promise<void>;
}

export interface ReadinessFailure {
  /** What /ready shows. */
  reason: string;
  /** The error behind a reason that does not tell it, for the log. */
  withheld?: unknown;
}

const exposed = (error: unknown): error is Error =>
  error instanceof Error && (error as { expose?: unknown }).expose === true;

/** Runs one check with a deadline; undefined when it passed. */
export async function runReadinessCheck(
  check: ReadinessCheck,
  timeoutMs = 2_000,
): Promise<ReadinessFailure | undefined> {
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new Error('deadline'));
    }, timeoutMs);
  });
  try {
    await Promise.race([check.check(), timeout]);
    return undefined;
  } catch (error) {
    if (timedOut) return { reason: `timed out after ${timeoutMs} ms` };
    return exposed(error) ? { reason: error.message } : { reason: 'unavailable', withheld: error };
  } finally {
    clearTimeout(timer);
  }
}
