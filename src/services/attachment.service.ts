// Who may see an attachment, and its bytes (SPEC §5): the uploader, and the participants of the
// conversation it was sent in, while its message and conversation exist; a user's avatar, anyone
// signed in (people see each other's pictures wherever they meet). Everyone else is told it does
// not exist (404), so ids cannot be probed.
import type { Readable } from 'node:stream';
import type { Attachment } from '../db/schema.js';
import { notFound } from '../errors.js';
import type { AttachmentRepository } from '../repositories/attachment.repository.js';
import { StoredFileMissing, type ByteRange, type FileStorage } from '../storage/storage.js';
import { isSafeInline, servedType } from './file-kinds.js';
import type { MembershipService } from './membership.service.js';
import type { Principal } from './session.service.js';

export type AttachmentContent =
  | { kind: 'redirect'; url: string }
  | { kind: 'stream'; stream: Readable; range: ByteRange | undefined };

export class AttachmentService {
  constructor(
    private readonly attachments: AttachmentRepository,
    private readonly membership: MembershipService,
    private readonly storage: FileStorage,
    private readonly linkTtlSeconds: number,
  ) {}

  async get(principal: Principal, id: string): Promise<Attachment> {
    const placed = await this.attachments.getPlaced(id);
    if (!placed) throw notFound('Attachment');
    const { attachment, conversationId } = placed;
    if (placed.avatar) return attachment;
    if (placed.removed) throw notFound('Attachment');
    if (attachment.uploaderId === principal.userId) return attachment;
    if (!conversationId) throw notFound('Attachment');
    try {
      await this.membership.requireParticipant(conversationId, principal.userId);
    } catch {
      throw notFound('Attachment');
    }
    return attachment;
  }

  /** Served inline only where a browser runs nothing (images, plain text, audio, video). */
  static servedInline(attachment: Attachment): boolean {
    return isSafeInline(attachment.mimeType);
  }

  static contentType(attachment: Attachment): string {
    return servedType(attachment.mimeType);
  }

  /** A presigned link where the store gives one (S3), else the bytes (or a range of them). */
  async content(
    attachment: Attachment,
    disposition: string,
    range: ByteRange | undefined,
  ): Promise<AttachmentContent> {
    const url = await this.storage.downloadLink(attachment.filename, {
      contentType: servedType(attachment.mimeType),
      contentDisposition: disposition,
      expiresInSeconds: this.linkTtlSeconds,
    });
    if (url) return { kind: 'redirect', url };
    try {
      return { kind: 'stream', stream: await this.storage.read(attachment.filename, range), range };
    } catch (error) {
      if (error instanceof StoredFileMissing) throw notFound('Attachment content');
      throw error;
    }
  }
}
