// Parley's typed client (`parley/client`): REST, Socket.IO with the exported event maps, and SSE
// with resume, over one session whose tokens are refreshed before they expire. See docs/client.md.
import { Realtime, type RealtimeOptions } from './realtime.js';
import { RestClient } from './rest.js';

export class ParleyClient extends RestClient {
  private realtime: Realtime | undefined;

  /** The session's socket (opened on first use; closed at sign-out). */
  connect(options: RealtimeOptions = {}): Realtime {
    if (!this.tokens.current) throw new Error('Sign in before connecting');
    if (!this.realtime || this.realtime.closed) {
      const realtime = new Realtime(this.baseUrl, this.tokens, options);
      this.realtime = realtime;
      const stop = this.tokens.onChange((session) => {
        if (session) return;
        stop();
        if (this.realtime === realtime) this.realtime = undefined;
      });
    }
    return this.realtime;
  }
}

export { Realtime, SocketCallError, type ParleySocket, type RealtimeOptions } from './realtime.js';
export { RestClient } from './rest.js';
export { unwrap } from './envelope.js';
export {
  TokenKeeper,
  type StoredSession,
  type SessionStore,
  type LockRunner,
  type TokenKeeperOptions,
} from './session.js';
export {
  streamGeneration,
  parseSse,
  StreamRefused,
  StreamGarbled,
  type StreamOptions,
} from './sse.js';
export * from './types.js';
export type {
  ClientToServerEvents,
  ServerToClientEvents,
  SocketError,
  AiStreamEnd,
  BranchSwitched,
  ReadReceipt,
} from '../realtime/events.js';
export { AI_USER_ID } from '../realtime/events.js';
