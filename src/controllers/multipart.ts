// Reads the one file of a multipart/form-data request (field `file`) as a stream, with busboy.
// The file's bytes go straight to the handler; nothing is buffered here. A body that breaks off
// or is malformed fails the handler's stream with a 400; a client that goes away fails it too,
// so the handler cleans up what it started.
import busboy from 'busboy';
import type { Request } from 'express';
import type { Readable } from 'node:stream';
import { AppError, validationError } from '../errors.js';
import type { IncomingFile } from '../services/upload.service.js';

/** Room for the multipart envelope around the file (boundaries, part headers). */
const ENVELOPE_BYTES = 64 * 1024;

const brokenBody = () =>
  validationError('The upload broke off or is not well-formed multipart/form-data');

export async function receiveFile<T>(
  req: Request,
  maxFileBytes: number,
  tooLarge: () => AppError,
  handle: (file: IncomingFile) => Promise<T>,
): Promise<T> {
  // Refused before the body is read (or while it still comes): close the connection after the
  // answer instead of taking in the rest, whatever its size.
  const refuse = (error: AppError): never => {
    req.res?.setHeader('Connection', 'close');
    throw error;
  };
  if (!/^multipart\/form-data\b/i.test(req.headers['content-type'] ?? '')) {
    refuse(
      new AppError(
        'UNSUPPORTED_MEDIA_TYPE',
        'Send the file as multipart/form-data in a field named "file"',
      ),
    );
  }
  // A declared length over the limit is refused before a byte is read.
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxFileBytes + ENVELOPE_BYTES) refuse(tooLarge());

  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      limits: { files: 1, fields: 10, fieldSize: 1024, parts: 12, headerPairs: 20 },
      defParamCharset: 'utf8',
    });
  } catch {
    return refuse(validationError('The multipart/form-data header has no usable boundary'));
  }

  try {
    return await new Promise<T>((resolve, reject) => {
      let file: Readable | undefined;
      const fail = (error: Error) => {
        // The handler's stream fails with it (and cleans up); without a file yet, answer now.
        if (file && !file.destroyed) file.destroy(error);
        else if (!file) reject(error);
      };
      parser.on('file', (field, stream, info) => {
        // A part cut off by the body's end fails its stream: an 'error' nobody listened to would
        // bring the whole process down. The handled stream's failure reaches its reader anyway.
        stream.on('error', () => undefined);
        if (field !== 'file' || file) {
          stream.resume(); // only the first `file` counts; others are read past, unused
          return;
        }
        file = stream;
        handle({ body: stream as AsyncIterable<Buffer>, name: info.filename }).then(
          resolve,
          (error: unknown) =>
            // The stream's own failure (cut off, malformed) is the client's; others pass as they are.
            reject(
              error instanceof Error && file?.errored === error ? brokenBody() : (error as Error),
            ),
        );
      });
      parser.on('error', () => fail(brokenBody()));
      parser.on('close', () => {
        if (!file) reject(validationError('The form has no file in a field named "file"'));
      });
      req.on('close', () => {
        if (!req.complete) fail(new Error('The client went away mid-upload'));
      });
      req.pipe(parser);
    });
  } finally {
    // Refused before the body was read to its end (too large, wrong type): stop parsing, and
    // close the connection after the answer instead of taking in the rest.
    if (!req.complete) {
      req.unpipe(parser);
      req.res?.setHeader('Connection', 'close');
      req.resume();
    }
  }
}
