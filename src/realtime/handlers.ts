// Client events (SPEC §6): each validated with zod, each checking participation through the
// services, each answering its ack — or an `error` event when the client gave none.
import type { z } from 'zod';
import { AppError, type ErrorCode } from '../errors.js';
import { isTerminal } from '../ai/generation-log.js';
import {
  ConversationRef,
  GenerationRef,
  GenerationResume,
  SocketAuthRefresh,
  SocketMarkRead,
  SocketSendMessage,
} from '../schemas/realtime.schemas.js';
import type { GenerationService } from '../services/generation.service.js';
import type { MembershipService } from '../services/membership.service.js';
import type { MessageService } from '../services/message.service.js';
import type { ParticipantService } from '../services/participant.service.js';
import type { Principal, SessionService } from '../services/session.service.js';
import type { TokenService } from '../services/token.service.js';
import { findForbiddenInput } from '../utils/client-input.js';
import { isOutage } from '../utils/outage.js';
import { isVanishedReference, VANISHED_REFERENCE_MESSAGE } from '../utils/vanished-reference.js';
import { describeError, type Logger } from '../utils/logger.js';
import type { SocketError, SocketErrorCode } from './events.js';
import { generationRoom, resumedRoom, toSocketEvents } from './generation-events.js';
import { conversationRoom, userRoom } from './socket-auth.js';
import type { ParleySocket } from './types.js';
import { TYPING_TIMEOUT_MS, type TypingTracker } from './typing.js';

export interface HandlerDeps {
  membership: MembershipService;
  generations: GenerationService;
  messages: MessageService;
  participants: ParticipantService;
  tokens: TokenService;
  sessions: SessionService;
  logger: Logger;
}

export interface ConnectionTools {
  typing: TypingTracker;
  /** Conversations this socket announced typing in (to stop them when it goes). */
  typingIn: Set<string>;
  /** Re-arms the disconnect at access-token expiry after auth:refresh. */
  rescheduleExpiry: () => void;
  /** Answers this socket follows after generation:resume, by id: how to stop following. */
  followed: Map<string, () => void>;
}

export type AckFn = (result: unknown) => void;

const CODE_FOR: Partial<Record<ErrorCode, SocketErrorCode>> = {
  FORBIDDEN: 'PERMISSION_DENIED',
  NOT_FOUND: 'NOT_FOUND',
  VALIDATION_ERROR: 'VALIDATION_ERROR',
  RATE_LIMITED: 'RATE_LIMITED',
  CONFLICT: 'CONFLICT',
  UNAUTHORIZED: 'UNAUTHORIZED',
  UNAVAILABLE: 'UNAVAILABLE',
};

/** Answers a client event's failure: through its ack when it has one, else as `error`. */
export function reply(socket: ParleySocket, ack: AckFn | undefined, error: SocketError): void {
  if (ack) ack({ ok: false, error: { code: error.code, message: error.message } });
  else socket.emit('error', error);
}

export function registerClientEvents(
  socket: ParleySocket,
  deps: HandlerDeps,
  tools: ConnectionTools,
): void {
  const { userId } = socket.data;
  const principal = (): Principal => ({
    userId: socket.data.userId,
    sessionId: socket.data.sessionId,
    role: socket.data.role,
  });
  const now = () => new Date().toISOString();
  const others = (conversationId: string) =>
    socket.to(conversationRoom(conversationId)).except(userRoom(userId));

  /** Wires one event: parse, run, acknowledge; failures mapped to the socket's error codes. */
  const on = <S extends z.ZodType>(
    event: string,
    schema: S,
    fallback: SocketErrorCode,
    run: (payload: z.output<S>) => Promise<unknown>,
  ) => {
    (socket as unknown as { on(event: string, listener: (...args: unknown[]) => void): void }).on(
      event,
      (...args: unknown[]) => {
        const last = args.at(-1);
        const ack = typeof last === 'function' ? (last as AckFn) : undefined;
        const payload = ack && args.length === 1 ? undefined : args[0];
        // The checks a JSON body gets at the REST door (NUL, prototype keys), then the same
        // schema as the REST twin: nothing a client sends reaches a service unchecked.
        const forbidden = findForbiddenInput(payload);
        if (forbidden) {
          reply(socket, ack, {
            code: 'VALIDATION_ERROR',
            message: `Invalid ${event} payload: ${forbidden}`,
            event,
          });
          return;
        }
        const parsed = schema.safeParse(payload);
        if (!parsed.success) {
          const first = parsed.error.issues[0];
          const where = first?.path.length ? `${first.path.join('.')}: ` : '';
          reply(socket, ack, {
            code: 'VALIDATION_ERROR',
            message: `Invalid ${event} payload: ${where}${first?.message ?? 'invalid'}`,
            event,
          });
          return;
        }
        run(parsed.data).then(
          (data) => ack?.({ ok: true, data }),
          (thrown: unknown) => {
            const error = isOutage(thrown)
              ? new AppError('UNAVAILABLE', 'A service is unavailable; try again shortly')
              : isVanishedReference(thrown)
                ? new AppError('CONFLICT', VANISHED_REFERENCE_MESSAGE)
                : thrown;
            const known = error instanceof AppError ? CODE_FOR[error.code] : undefined;
            if (!known) deps.logger.error(`Socket event ${event} failed`, describeError(error));
            const message = error instanceof AppError && known ? error.message : `${event} failed`;
            reply(socket, ack, { code: known ?? fallback, message, event });
          },
        );
      },
    );
  };

  on('conversation:join', ConversationRef, 'JOIN_FAILED', async ({ conversationId }) => {
    await deps.membership.requireParticipant(conversationId, userId);
    await socket.join(conversationRoom(conversationId));
    others(conversationId).emit('user:joined', { conversationId, userId, timestamp: now() });
    return { conversationId };
  });

  on('conversation:leave', ConversationRef, 'JOIN_FAILED', async ({ conversationId }) => {
    await deps.membership.requireParticipant(conversationId, userId);
    await socket.leave(conversationRoom(conversationId));
    others(conversationId).emit('user:left', {
      conversationId,
      userId,
      reason: 'unsubscribed',
      timestamp: now(),
    });
    return { conversationId };
  });

  on('message:send', SocketSendMessage, 'SEND_FAILED', async ({ conversationId, ...body }) => {
    const result = await deps.messages.send(principal(), conversationId, body);
    // Sending ends typing, as every chat client shows it.
    if (tools.typing.stop(conversationId, userId)) {
      others(conversationId).emit('typing:stop', { conversationId, userId, timestamp: now() });
    }
    return result;
  });

  on('message:read', SocketMarkRead, 'SEND_FAILED', async ({ conversationId, messageId }) => {
    const receipt = await deps.participants.markRead(principal(), conversationId, messageId);
    return { ...receipt, readAt: receipt.lastReadAt };
  });

  on('typing:start', ConversationRef, 'SEND_FAILED', async ({ conversationId }) => {
    await deps.membership.requireParticipant(conversationId, userId);
    tools.typingIn.add(conversationId);
    if (tools.typing.start(conversationId, userId)) {
      others(conversationId).emit('typing:start', {
        conversationId,
        userId,
        timestamp: now(),
        expiresInMs: TYPING_TIMEOUT_MS,
      });
    }
    return { conversationId };
  });

  on('typing:stop', ConversationRef, 'SEND_FAILED', async ({ conversationId }) => {
    await deps.membership.requireParticipant(conversationId, userId);
    tools.typingIn.delete(conversationId);
    if (tools.typing.stop(conversationId, userId)) {
      others(conversationId).emit('typing:stop', { conversationId, userId, timestamp: now() });
    }
    return { conversationId };
  });

  on('generation:stop', GenerationRef, 'SEND_FAILED', ({ generationId }) =>
    deps.generations.stop(principal(), generationId),
  );

  on('generation:resume', GenerationResume, 'JOIN_FAILED', async ({ generationId, afterSeq }) => {
    // The same path as an SSE stream (GenerationService.openStream): access checked, the missed
    // events replayed, then each new one, exactly once, until the end or until the caller may no
    // longer see the conversation.
    const follow = await deps.generations.openStream(principal(), generationId, afterSeq);
    // From now on this socket hears the answer from this follow alone (a second resume replaces
    // the first; the live room would send each event twice).
    tools.followed.get(generationId)?.();
    tools.followed.delete(generationId);
    await socket.leave(generationRoom(generationId));
    if (!follow) return { generationId, replayed: 0, finished: true };
    // Nor from the conversation's room, where the answer's end goes too (generation-bridge.ts).
    await socket.join(resumedRoom(generationId));
    // After the broadcast of the same event: the log hands an event to all of this process's
    // followers in one synchronous pass, the bridge's among them.
    const leaveLater = () => setImmediate(() => void socket.leave(resumedRoom(generationId)));
    let replayed = 0;
    let finished = false;
    let live = false;
    let unfollow: () => void;
    try {
      unfollow = await follow(
        (event) => {
          if (!live) replayed += 1;
          if (isTerminal(event)) finished = true;
          for (const [name, payload] of toSocketEvents(event)) {
            (socket.emit as (event: string, payload: unknown) => boolean)(name, payload);
          }
          if (finished) {
            tools.followed.delete(generationId);
            leaveLater();
          }
        },
        () => {
          tools.followed.delete(generationId);
          leaveLater();
        },
      );
    } catch (error) {
      // Could not follow (Redis away): back to the live broadcasts, as before the resume.
      await socket.leave(resumedRoom(generationId));
      await socket.join(generationRoom(generationId));
      throw error;
    }
    live = true;
    if (finished || socket.disconnected) unfollow();
    else tools.followed.set(generationId, unfollow);
    return { generationId, replayed, finished };
  });

  on('auth:refresh', SocketAuthRefresh, 'UNAUTHORIZED', async ({ token }) => {
    let claims;
    try {
      claims = deps.tokens.verifyAccess(token);
    } catch {
      throw new AppError('UNAUTHORIZED', 'Invalid access token');
    }
    if (claims.userId !== userId || claims.sid !== socket.data.sessionId) {
      throw new AppError('UNAUTHORIZED', 'The token belongs to another session');
    }
    if (!(await deps.sessions.authenticate(claims))) {
      throw new AppError('UNAUTHORIZED', 'Session is no longer active');
    }
    socket.data.expiresAt = claims.expiresAt;
    tools.rescheduleExpiry();
    return { expiresAt: new Date(claims.expiresAt).toISOString() };
  });
}
