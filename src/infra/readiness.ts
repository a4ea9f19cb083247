// Dependencies /ready checks (database now; Redis and the model provider later).

export interface ReadinessCheck {
  name: string;
  /** Throws when the dependency cannot serve. */
  check(): Promise<void>;
}

/** Runs one check with a deadline; the error text when it failed, undefined when it passed. */
export async function runReadinessCheck(
  check: ReadinessCheck,
  timeoutMs = 2_000,
): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([check.check(), timeout]);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    clearTimeout(timer);
  }
}
