// /api/attachments (SPEC §5 Attachments): upload, metadata, content.
import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import type { AttachmentController } from '../controllers/attachment.controller.js';
import type { Limiter } from '../infra/rate-limiter.js';
import { byUser, rateLimit } from '../middleware/rate-limit.middleware.js';
import { validate } from '../middleware/validate.middleware.js';
import { doc } from '../openapi/route-meta.js';
import { Attachment, AttachmentParams, UploadForm } from '../schemas/attachment.schemas.js';

export function attachmentRoutes(
  c: AttachmentController,
  requireAuth: RequestHandler,
  limits: { uploads: Limiter },
): Router {
  const router = Router();
  router.use(requireAuth);
  router.post(
    '/',
    doc({
      summary:
        'Upload a file (multipart field `file`). Its type is read from its bytes: images, PDF, text, markdown, code, audio and video are accepted (415 otherwise); over UPLOAD_MAX_BYTES is a 413. Attach it by sending a message with `attachments: [id]` within 24 hours',
      success: { status: 201, schema: Attachment },
      request: { body: UploadForm },
      multipart: true,
      errors: ['VALIDATION_ERROR', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'],
    }),
    rateLimit(limits.uploads, byUser),
    c.upload,
  );
  router.get(
    '/:id',
    doc({
      summary:
        "An attachment's metadata: for its uploader, and the participants of the conversation it was sent in",
      success: { status: 200, schema: Attachment },
      errors: ['NOT_FOUND'],
    }),
    validate({ params: AttachmentParams }),
    c.get,
  );
  router.get(
    '/:id/content',
    doc({
      summary:
        "An attachment's bytes (a Range of them on local storage), or a 302 to a link valid for UPLOAD_URL_TTL on S3. HTML, SVG and other types a browser would run are sent as downloads",
      success: {
        status: 200,
        schema: z.string().meta({ format: 'binary' }),
        contentType: 'application/octet-stream',
        raw: true,
      },
      errors: ['NOT_FOUND', 'RANGE_NOT_SATISFIABLE'],
    }),
    validate({ params: AttachmentParams }),
    c.content,
  );
  return router;
}
