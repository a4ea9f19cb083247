// /api/attachments: upload, metadata, content → services → envelope (or the bytes).
import { create as contentDisposition } from 'content-disposition';
import type { Request, Response } from 'express';
import { pipeline } from 'node:stream/promises';
import { AppError } from '../errors.js';
import { principalOf } from '../middleware/auth.middleware.js';
import type { AttachmentParams } from '../schemas/attachment.schemas.js';
import { AttachmentService } from '../services/attachment.service.js';
import { tooLarge, type UploadService } from '../services/upload.service.js';
import { toAttachmentView } from '../services/views.js';
import type { ByteRange } from '../storage/storage.js';
import { created, ok } from './respond.js';
import { receiveFile } from './multipart.js';

export class AttachmentController {
  constructor(
    private readonly uploads: UploadService,
    private readonly attachments: AttachmentService,
    private readonly maxBytes: number,
  ) {}

  upload = async (req: Request, res: Response) => {
    const principal = principalOf(req);
    const attachment = await receiveFile(
      req,
      this.maxBytes,
      () => tooLarge(this.maxBytes),
      (file) => this.uploads.upload(principal, file),
    );
    created(res, toAttachmentView(attachment));
  };

  get = async (req: Request<AttachmentParams>, res: Response) => {
    ok(res, toAttachmentView(await this.attachments.get(principalOf(req), req.params.id)));
  };

  content = async (req: Request<AttachmentParams>, res: Response) => {
    const attachment = await this.attachments.get(principalOf(req), req.params.id);
    const inline = AttachmentService.servedInline(attachment);
    const disposition = contentDisposition(attachment.originalName, {
      type: inline ? 'inline' : 'attachment',
    });
    const range = requestedRange(req, res, attachment.size);
    const content = await this.attachments.content(attachment, disposition, range);
    res.setHeader('Cache-Control', 'private, no-store');
    if (content.kind === 'redirect') {
      res.redirect(302, content.url);
      return;
    }
    res.setHeader('Content-Type', AttachmentService.contentType(attachment));
    res.setHeader('Content-Disposition', disposition);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // Even opened directly, nothing in the file may run or load anything.
    res.setHeader('Content-Security-Policy', "default-src 'none'; sandbox");
    res.setHeader('Accept-Ranges', 'bytes');
    if (range) {
      res.status(206);
      res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${attachment.size}`);
      res.setHeader('Content-Length', String(range.end - range.start + 1));
    } else {
      res.setHeader('Content-Length', String(attachment.size));
    }
    // A client that stops reading ends the copy; there is nothing to report to it.
    await pipeline(content.stream, res).catch(() => content.stream.destroy());
  };
}

/** One byte range of `Range: bytes=…` (several are answered with the whole file, as allowed). */
function requestedRange(req: Request, res: Response, size: number): ByteRange | undefined {
  if (!req.headers.range) return undefined;
  const ranges = req.range(size, { combine: true });
  if (ranges === -1) {
    res.setHeader('Content-Range', `bytes */${size}`);
    throw new AppError('RANGE_NOT_SATISFIABLE', `The file has ${size} bytes`, {
      details: { size },
    });
  }
  if (ranges === -2 || ranges === undefined || ranges.type !== 'bytes' || ranges.length !== 1)
    return undefined;
  return { start: ranges[0]!.start, end: ranges[0]!.end };
}
