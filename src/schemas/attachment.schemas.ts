// /api/attachments (SPEC §5): the upload form and what an attachment looks like.
import { z } from 'zod';
import { IdParams } from './common.schemas.js';

export { AttachmentView as Attachment } from './message.schemas.js';

export const AttachmentParams = IdParams;
export type AttachmentParams = z.infer<typeof AttachmentParams>;

/** The multipart form, for the OpenAPI document (the route reads it as a stream). */
export const UploadForm = z.object({
  file: z.string().meta({ format: 'binary', description: 'The file (one)' }),
});
