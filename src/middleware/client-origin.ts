// Who sent a request: the address rate limits and sessions are keyed by.

/** The parts of a request that say who sent it; any Request fits, whatever its generics. */
export interface RequestOrigin {
  ip?: string | undefined;
  socket: { remoteAddress?: string | undefined };
  get(header: string): string | undefined;
}

export const byIp = (req: RequestOrigin): string => req.ip ?? req.socket.remoteAddress ?? 'unknown';
