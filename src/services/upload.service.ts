// Taking in an upload (SPEC §5): the bytes stream from the request to storage, never whole in
// memory. The first 4 KiB decide the type (file-type's signatures, else the UTF-8 text check);
// what is outside the allowlist is refused before anything is written, a file that grows past
// UPLOAD_MAX_BYTES or stops being text is refused the moment it does, and either way nothing is
// left behind: storage drops the partial file, and the row is only written once the file is whole.
import { fileTypeFromBuffer } from 'file-type';
import { imageSize } from 'image-size';
import { Readable } from 'node:stream';
import type { Attachment } from '../db/schema.js';
import { AppError, validationError } from '../errors.js';
import type { AttachmentRepository } from '../repositories/attachment.repository.js';
import type { FileStorage } from '../storage/storage.js';
import { createId } from '../utils/ids.js';
import { acceptBinary, displayName, textType, TextCheck, type SniffedType } from './file-kinds.js';
import type { Principal } from './session.service.js';

/** Bytes file-type needs to recognise nearly every format. */
const SNIFF_BYTES = 4100;
/** Bytes of an image kept to read its size: JPEG's size marker can follow large EXIF blocks. */
const IMAGE_HEAD_BYTES = 1024 * 1024;

export const tooLarge = (maxBytes: number) =>
  new AppError('PAYLOAD_TOO_LARGE', `The file is larger than the ${maxBytes}-byte limit`, {
    details: { maxBytes },
  });
const unsupported = (what: string) =>
  new AppError(
    'UNSUPPORTED_MEDIA_TYPE',
    `${what}: accepted are images, PDF, text, markdown, code, audio and video`,
  );

export interface IncomingFile {
  /** The file's bytes as the client sends them. */
  body: AsyncIterable<Buffer>;
  /** The name the client gave, shown to people and nothing else. */
  name: string | undefined;
}

export class UploadService {
  constructor(
    private readonly attachments: AttachmentRepository,
    private readonly storage: FileStorage,
    private readonly maxBytes: number,
  ) {}

  async upload(principal: Principal, file: IncomingFile): Promise<Attachment> {
    const originalName = displayName(file.name);
    const source = file.body[Symbol.asyncIterator]();
    const { head, ended } = await this.readHead(source);
    if (head.length === 0) throw validationError('file is empty');
    const textCheck = new TextCheck();
    const type = await sniff(head, originalName, textCheck);

    const id = createId();
    const filename = `${id}.${type.extension}`;
    let size = 0;
    const imageHead: Buffer[] = [];
    let imageHeadBytes = 0;
    const count = (chunk: Buffer, checkText: boolean) => {
      size += chunk.length;
      if (size > this.maxBytes) throw tooLarge(this.maxBytes);
      if (type.kind === 'text' && checkText && !textCheck.push(chunk))
        throw unsupported('The file is not text after all');
      if (type.kind === 'image' && imageHeadBytes < IMAGE_HEAD_BYTES) {
        imageHead.push(chunk);
        imageHeadBytes += chunk.length;
      }
      return chunk;
    };
    async function* bytes(): AsyncGenerator<Buffer> {
      yield count(head, false); // already checked as text by sniff()
      if (!ended) {
        for (let next = await source.next(); !next.done; next = await source.next())
          yield count(next.value, true);
      }
      if (type.kind === 'text' && !textCheck.end())
        throw unsupported('The file is not text after all');
    }
    await this.storage.write(filename, Readable.from(bytes()), type.mimeType);

    try {
      const metadata = type.kind === 'image' ? imageMetadata(imageHead, size) : null;
      return await this.attachments.create({
        id,
        uploaderId: principal.userId,
        filename,
        originalName,
        mimeType: type.mimeType,
        size,
        // The seed's column; clients get the same path derived from the id (views.ts).
        url: `/api/attachments/${id}/content`,
        metadata,
      });
    } catch (error) {
      await this.storage.remove(filename).catch(() => {});
      throw error;
    }
  }

  /** The first SNIFF_BYTES (or the whole file, if smaller). */
  private async readHead(source: AsyncIterator<Buffer>): Promise<{ head: Buffer; ended: boolean }> {
    const chunks: Buffer[] = [];
    let length = 0;
    while (length < SNIFF_BYTES) {
      const next = await source.next();
      if (next.done) return { head: Buffer.concat(chunks), ended: true };
      chunks.push(next.value);
      length += next.value.length;
      if (length > this.maxBytes) throw tooLarge(this.maxBytes);
    }
    return { head: Buffer.concat(chunks), ended: false };
  }
}

async function sniff(head: Buffer, name: string, textCheck: TextCheck): Promise<SniffedType> {
  const detected = await fileTypeFromBuffer(head);
  // Signatures of text formats (XML, calendars) go the text way: checked, typed by name.
  if (detected && !detected.mime.startsWith('text/') && detected.mime !== 'application/xml') {
    const accepted = acceptBinary(detected);
    if (!accepted) throw unsupported(`Files of type ${detected.mime} are not accepted`);
    return accepted;
  }
  if (!textCheck.push(head)) throw unsupported('The file is neither a known format nor text');
  return textType(name);
}

/** Width and height read from the image's own header; an image without a readable size is refused. */
function imageMetadata(head: Buffer[], size: number): { width: number; height: number } | null {
  const bytes = Buffer.concat(head);
  try {
    const { width, height } = imageSize(bytes);
    if (width && height) return { width, height };
  } catch {
    // fall through
  }
  // Only a file we saw whole is known to be broken; a huge one may keep its size further in.
  if (bytes.length >= size) throw unsupported('The image is damaged');
  return null;
}
