// GET /api/auth/me/export (SPEC §5 Auth): everything the user owns or can read, as one JSON
// document written piece by piece — conversations a page at a time, each one's messages in keyset
// pages — so memory holds one page, whatever the account's size. Pieces are produced only as fast
// as the client reads them (the consumer pulls).
import type { Message } from '../db/schema.js';
import { notFound } from '../errors.js';
import type { AttachmentRepository } from '../repositories/attachment.repository.js';
import type { ConversationRepository } from '../repositories/conversation.repository.js';
import type { MessageRepository } from '../repositories/message.repository.js';
import type { ParticipantRepository } from '../repositories/participant.repository.js';
import type { UserRepository } from '../repositories/user.repository.js';
import type { KeyedSemaphore } from '../utils/semaphore.js';
import { toPublicUser } from './auth.service.js';
import type { Principal, SessionService } from './session.service.js';
import {
  toAttachmentView,
  toConversationFields,
  toParticipantView,
  type MessageViews,
} from './views.js';

export const EXPORT_FORMAT = 'parley-export/1';
const CONVERSATION_PAGE = 20;
const MESSAGE_PAGE = 200;
const UPLOAD_PAGE = 200;
/** Before every message: (created_at, id) > this starts at the first. */
const START = { createdAt: new Date(0), id: '' };

export interface ExportDeps {
  users: UserRepository;
  sessions: SessionService;
  conversations: ConversationRepository;
  participants: ParticipantRepository;
  messages: MessageRepository;
  attachments: AttachmentRepository;
  views: MessageViews;
  /** A user's exports run one at a time (per process); another waits its turn. */
  slots: KeyedSemaphore;
}

export class AccountExport {
  constructor(private readonly deps: ExportDeps) {}

  /**
   * Hands `consume` the document as text pieces and resolves when it has taken them all. The
   * user is read before `consume` is called, so a missing one is an ordinary 404 before any byte.
   * The document is read page by page, not as one snapshot: what changes meanwhile may or may not
   * be in it.
   */
  async export(
    principal: Principal,
    consume: (pieces: AsyncIterable<string>) => Promise<void>,
  ): Promise<void> {
    await this.deps.slots.run(principal.userId, async () => {
      const user = await this.deps.users.getById(principal.userId);
      if (!user) throw notFound('User');
      const head = {
        format: EXPORT_FORMAT,
        exportedAt: new Date().toISOString(),
        user: toPublicUser(user),
        sessions: await this.deps.sessions.list(principal),
      };
      await consume(this.document(principal.userId, head));
    });
  }

  private async *document(userId: string, head: object): AsyncGenerator<string> {
    // The head's fields, then the two arrays, each opened and closed around its pages.
    yield `${JSON.stringify(head).slice(0, -1)},"conversations":[`;
    let first = true;
    for await (const conversation of this.conversations(userId)) {
      if (!first) yield ',\n';
      first = false;
      yield* conversation;
    }
    yield '],"uploads":[';
    first = true;
    for await (const page of this.uploads(userId)) {
      yield (first ? '' : ',') + page;
      first = false;
    }
    yield ']}\n';
  }

  /** Each conversation as its own run of pieces: fields and participants, then messages. */
  private async *conversations(userId: string): AsyncGenerator<AsyncGenerator<string>> {
    let afterId: string | undefined;
    for (;;) {
      const page = await this.deps.conversations.pageOfMember(userId, CONVERSATION_PAGE, afterId);
      for (const row of page) {
        const participants = await this.deps.participants.list(row.conversation.id);
        const fields = {
          ...toConversationFields(row.conversation),
          myRole: row.role,
          joinedAt: row.joinedAt.toISOString(),
          lastReadAt: (row.lastReadAt ?? row.joinedAt).toISOString(),
          participants: participants.map(toParticipantView),
        };
        yield this.withMessages(fields, row.conversation.id);
      }
      if (page.length < CONVERSATION_PAGE) return;
      afterId = page.at(-1)!.conversation.id;
    }
  }

  private async *withMessages(fields: object, conversationId: string): AsyncGenerator<string> {
    yield `${JSON.stringify(fields).slice(0, -1)},"messages":[`;
    let after: { createdAt: Date; id: string } = START;
    let first = true;
    for (;;) {
      const { rows, hasMore } = await this.deps.messages.page(conversationId, {
        limit: MESSAGE_PAGE,
        after,
      });
      if (rows.length) {
        const views = await this.deps.views.build(rows);
        yield (first ? '' : ',') + views.map((view) => JSON.stringify(view)).join(',');
        first = false;
        const last: Message = rows.at(-1)!;
        after = { createdAt: last.createdAt, id: last.id };
      }
      if (!hasMore) break;
    }
    yield ']}';
  }

  /** The user's uploads, a page of JSON array items at a time. */
  private async *uploads(userId: string): AsyncGenerator<string> {
    let after: { createdAt: Date; id: string } | undefined;
    for (;;) {
      const rows = await this.deps.attachments.pageByUploader(userId, UPLOAD_PAGE, after);
      if (rows.length)
        yield rows
          .map((row) =>
            JSON.stringify({
              ...toAttachmentView(row),
              messageId: row.messageId,
              createdAt: row.createdAt.toISOString(),
            }),
          )
          .join(',');
      if (rows.length < UPLOAD_PAGE) return;
      const last = rows.at(-1)!;
      after = { createdAt: last.createdAt, id: last.id };
    }
  }
}
