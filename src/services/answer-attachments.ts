// The files of the messages an answer reads, made ready for the model (issue 10, SPEC §7):
// images read as image parts when the model has vision, text files read up to what its window can
// hold (never a 20 MB file whole for a 4k window), every other file named with its type and size.
// Newest messages first: the question's own files get the images and the bytes before older ones.
// context.ts then fits them into the window.
import type { ContextFile } from '../ai/context.js';
import type { ProviderCapabilities } from '../ai/provider.js';
import type { Attachment, Message } from '../db/schema.js';
import type { AttachmentRepository } from '../repositories/attachment.repository.js';
import type { FileStorage } from '../storage/storage.js';
import { describeError, type Logger } from '../utils/logger.js';
import { createSemaphore } from '../utils/semaphore.js';
import { isText, isVisionImage } from './file-kinds.js';

/** Images sent in one request; older ones are named. */
export const MAX_IMAGES = 4;
/** Bytes of images in one request (OpenAI takes at most 20 MB an image). */
const MAX_IMAGE_BYTES = 20 * 1024 * 1024;
/**
 * Bytes of text read per token of the window: more than any tokenizer's average (and the 3-byte
 * estimate's), so a window is filled before the reading stops. Capped for very large windows.
 */
const TEXT_BYTES_PER_TOKEN = 4;
const MAX_TEXT_BYTES = 8 * 1024 * 1024;
/** Files read from storage at once for one answer. */
const READS_AT_ONCE = 4;

/**
 * Messages with files carry a type that says so (message.service.ts: a message's type follows its
 * attachments; clients may only choose TEXT, CODE or MARKDOWN). A branch without them needs no query.
 */
const FILE_TYPES = new Set<Message['type']>(['IMAGE', 'FILE', 'AUDIO', 'VIDEO']);

type Plan =
  | { kind: 'image'; row: Attachment }
  | { kind: 'text'; row: Attachment; bytes: number }
  | { kind: 'named'; row: Attachment; why: string };

export class AnswerAttachments {
  constructor(
    private readonly attachments: AttachmentRepository,
    private readonly storage: FileStorage,
    private readonly logger: Logger,
  ) {}

  /** The files of `branch`'s messages (deleted ones left out), by message id, each in upload order. */
  async forBranch(
    branch: readonly Message[],
    model: ProviderCapabilities,
  ): Promise<Map<string, ContextFile[]>> {
    const ids = branch.filter((m) => !m.isDeleted && FILE_TYPES.has(m.type)).map((m) => m.id);
    const files = new Map<string, ContextFile[]>();
    if (ids.length === 0) return files;
    const newestFirst = new Map(ids.map((id, i) => [id, ids.length - i]));
    const rows = (await this.attachments.listForMessages(ids)).sort(
      (a, b) => newestFirst.get(a.messageId!)! - newestFirst.get(b.messageId!)!,
    );
    const reads = createSemaphore(READS_AT_ONCE);
    const prepared = await Promise.all(
      plan(rows, model).map((p) => reads.run(() => this.prepare(p))),
    );
    // Back in each message's own order (the rows came oldest upload first within a message).
    rows.forEach((row, i) => {
      const list = files.get(row.messageId!) ?? [];
      list.push(prepared[i]!);
      files.set(row.messageId!, list);
    });
    return files;
  }

  private async prepare(p: Plan): Promise<ContextFile> {
    const { row } = p;
    if (p.kind === 'named') return { kind: 'named', label: `${describe(row)} — ${p.why}` };
    try {
      if (p.kind === 'image') {
        const bytes = await readUpTo(this.storage, row.filename, row.size);
        const { width, height } = dimensions(row);
        return {
          kind: 'image',
          label: `image: ${[row.originalName, size(width, height)].filter(Boolean).join(', ')}`,
          part: {
            type: 'image',
            mimeType: row.mimeType,
            data: bytes.toString('base64'),
            name: row.originalName,
            width,
            height,
          },
        };
      }
      const bytes = await readUpTo(this.storage, row.filename, p.bytes);
      const complete = bytes.length >= row.size;
      // A cut between the bytes of one character leaves that character out (stream: true).
      const text = new TextDecoder('utf-8').decode(bytes, { stream: !complete });
      return { kind: 'text', label: describe(row), text, complete };
    } catch (error) {
      this.logger.warn('An attachment could not be read for an AI answer', {
        attachmentId: row.id,
        ...describeError(error),
      });
      return { kind: 'named', label: `${describe(row)} — could not be read` };
    }
  }
}

/** What each file becomes, newest message first: the images and the text bytes go there first. */
function plan(rows: readonly Attachment[], model: ProviderCapabilities): Plan[] {
  let images = MAX_IMAGES;
  let imageBytes = MAX_IMAGE_BYTES;
  let textBytes = Math.min(MAX_TEXT_BYTES, model.contextWindow * TEXT_BYTES_PER_TOKEN);
  return rows.map((row): Plan => {
    if (isText(row.mimeType)) {
      if (textBytes <= 0)
        return { kind: 'named', row, why: "not included: no room left in the model's context" };
      const bytes = Math.min(row.size, textBytes);
      textBytes -= bytes;
      return { kind: 'text', row, bytes };
    }
    if (!row.mimeType.startsWith('image/'))
      return { kind: 'named', row, why: 'the model cannot read this type of file' };
    if (!model.vision) return { kind: 'named', row, why: 'this model cannot see images' };
    if (!isVisionImage(row.mimeType))
      return { kind: 'named', row, why: 'not sent: the model takes PNG, JPEG, WebP and GIF' };
    if (images === 0)
      return {
        kind: 'named',
        row,
        why: `not sent: only the ${MAX_IMAGES} newest images go to the model`,
      };
    if (row.size > imageBytes) return { kind: 'named', row, why: 'not sent: too large' };
    images -= 1;
    imageBytes -= row.size;
    return { kind: 'image', row };
  });
}

/** "file: notes.md, text/markdown, 1.2 KB"; an image also says its size in pixels. */
function describe(row: Attachment): string {
  const kind = /^(image|audio|video)\//.exec(row.mimeType)?.[1] ?? 'file';
  const { width, height } = dimensions(row);
  const parts = [row.originalName, row.mimeType, size(width, height), bytesText(row.size)];
  return `${kind}: ${parts.filter(Boolean).join(', ')}`;
}

function dimensions(row: Attachment): { width?: number; height?: number } {
  const { width, height } = row.metadata ?? {};
  return typeof width === 'number' && typeof height === 'number' ? { width, height } : {};
}

const size = (width?: number, height?: number) => (width && height ? `${width}×${height}` : '');

function bytesText(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** The first `bytes` of a stored file (a range request: the rest is never fetched). */
async function readUpTo(storage: FileStorage, key: string, bytes: number): Promise<Buffer> {
  if (bytes <= 0) return Buffer.alloc(0);
  const stream = await storage.read(key, { start: 0, end: bytes - 1 });
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= bytes) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, bytes);
}
