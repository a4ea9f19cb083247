// Turns rows into the API's shapes (schemas/*): ISO timestamps, defaults applied, deleted
// content withheld, authors, reactions, attachments and version numbers attached with one query
// each.
import type { Attachment, Conversation, Message } from '../db/schema.js';
import type { ParticipantRow } from '../repositories/participant.repository.js';
import type { AttachmentRepository } from '../repositories/attachment.repository.js';
import type {
  ReactionRepository,
  ReactionSummaryRow,
} from '../repositories/reaction.repository.js';
import type { UserRepository, UserSummaryRow } from '../repositories/user.repository.js';
import type { VersionSummary } from '../repositories/message-versions.js';
import type { VersionRepository } from '../repositories/version.repository.js';
import type { MessageView } from '../schemas/message.schemas.js';

const iso = (date: Date) => date.toISOString();
const isoOrNull = (date: Date | null) => (date ? date.toISOString() : null);

/**
 * What clients get for `users.avatar`, which stores the id of the user's picture (an attachment):
 * the route that serves it, derived like an attachment's `url`, so clients never build it.
 */
export const avatarPath = (attachmentId: string | null): string | null =>
  attachmentId ? `/api/attachments/${attachmentId}/content` : null;

/** A user as other people see them: id, name, picture. */
export function toUserSummary(row: UserSummaryRow) {
  return { id: row.id, username: row.username, avatar: avatarPath(row.avatar) };
}

export function toConversationFields(conversation: Conversation) {
  return {
    id: conversation.id,
    title: conversation.title,
    description: conversation.description,
    isArchived: conversation.isArchived,
    settings: { aiEnabled: true, ...conversation.settings },
    createdAt: iso(conversation.createdAt),
    updatedAt: iso(conversation.updatedAt),
    lastMessageAt: isoOrNull(conversation.lastMessageAt),
  };
}

export function toParticipantView(row: ParticipantRow) {
  return {
    ...row,
    avatar: avatarPath(row.avatar),
    joinedAt: iso(row.joinedAt),
    lastReadAt: iso(row.lastReadAt),
  };
}

/**
 * An attachment as clients see it. Its `url` is derived here, never read from storage: it is the
 * route that checks the caller's rights and then streams the bytes or redirects to a link that
 * lives for minutes (S3), which a stored URL would outlive.
 */
export function toAttachmentView(row: Attachment) {
  return {
    id: row.id,
    filename: row.filename,
    originalName: row.originalName,
    mimeType: row.mimeType,
    size: row.size,
    url: `/api/attachments/${row.id}/content`,
    metadata: row.metadata,
  };
}

export function toMessageView(
  row: Message,
  author: UserSummaryRow | undefined,
  reactions: readonly ReactionSummaryRow[] = [],
  files: readonly Attachment[] = [],
  versions: VersionSummary | null = null,
): MessageView {
  const deleted = row.isDeleted;
  return {
    id: row.id,
    conversationId: row.conversationId,
    userId: row.userId,
    // Null once the author deleted their account (messages.user_id is SET NULL): a deleted user.
    author: author ? toUserSummary(author) : null,
    // A deleted message keeps its place in the conversation, but nothing of what it said.
    content: deleted ? null : row.content,
    role: row.role,
    type: row.type,
    metadata: deleted ? null : row.metadata,
    parentId: row.parentId,
    alternativeOf: row.alternativeOf,
    superseded: row.superseded,
    versions,
    threadId: row.threadId,
    status: row.status,
    isEdited: row.isEdited,
    isDeleted: deleted,
    clientMessageId: row.clientMessageId,
    model: row.model,
    usage: row.usage,
    finishReason: row.finishReason,
    reactions: deleted
      ? []
      : reactions.map(({ emoji, count, userIds }) => ({ emoji, count, userIds })),
    attachments: deleted ? [] : files.map(toAttachmentView),
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
    editedAt: isoOrNull(row.editedAt),
  };
}

/** Builds message views for a batch of rows with one query per kind of related data. */
export class MessageViews {
  constructor(
    private readonly users: UserRepository,
    private readonly reactions: ReactionRepository,
    private readonly attachments: AttachmentRepository,
    private readonly versions: VersionRepository,
  ) {}

  async build(rows: readonly Message[]): Promise<MessageView[]> {
    if (rows.length === 0) return [];
    const ids = rows.map((row) => row.id);
    const authorIds = [...new Set(rows.flatMap((row) => (row.userId ? [row.userId] : [])))];
    const [authors, reactions, files, versions] = await Promise.all([
      this.users.summaries(authorIds),
      this.reactions.summaries(ids),
      this.attachments.listForMessages(ids),
      this.versions.summaries(rows),
    ]);
    const authorById = new Map(authors.map((a) => [a.id, a]));
    const reactionsByMessage = groupBy(reactions, (r) => r.messageId);
    const filesByMessage = groupBy(files, (f) => f.messageId ?? '');
    return rows.map((row) =>
      toMessageView(
        row,
        row.userId ? authorById.get(row.userId) : undefined,
        reactionsByMessage.get(row.id),
        filesByMessage.get(row.id),
        versions.get(row.id) ?? null,
      ),
    );
  }

  async one(row: Message): Promise<MessageView> {
    const [view] = await this.build([row]);
    return view!;
  }
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}
