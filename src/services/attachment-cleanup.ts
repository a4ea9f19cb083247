// The attachment cleanup job (SPEC §5): removes uploads no message used within
// UPLOAD_UNATTACHED_TTL, the files of deleted messages and conversations, and whatever a process
// killed mid-upload left in storage (a partial write, or a file whose row was never written).
// Rows go first and files after: a crash between the two leaves a file without a row, which the
// next run's orphan sweep removes; never a row without its file.
import type { AttachmentRepository } from '../repositories/attachment.repository.js';
import type { FileStorage } from '../storage/storage.js';
import { describeError, type Logger } from '../utils/logger.js';

/** A file is an orphan only once it is this old: younger, its upload may still be finishing. */
const ORPHAN_GRACE_MS = 60 * 60 * 1000;
const BATCH = 500;

export interface CleanupReport {
  unattached: number;
  ofDeletedMessages: number;
  orphans: number;
  abandonedWrites: number;
}

export class AttachmentCleanup {
  constructor(
    private readonly attachments: AttachmentRepository,
    private readonly storage: FileStorage,
    private readonly logger: Logger,
    private readonly options: { unattachedTtlMs: number },
  ) {}

  /** One run; `now` can be moved forward (tests, or an operator catching up). */
  async sweep(now = new Date()): Promise<CleanupReport> {
    const unattachedBefore = new Date(now.getTime() - this.options.unattachedTtlMs);
    const report: CleanupReport = {
      unattached: await this.drain(() =>
        this.attachments.deleteUnattached(unattachedBefore, BATCH),
      ),
      ofDeletedMessages: await this.drain(() => this.attachments.deleteRemoved(BATCH)),
      orphans: 0,
      abandonedWrites: 0,
    };
    const graceBefore = new Date(now.getTime() - ORPHAN_GRACE_MS);
    report.orphans = await this.removeOrphans(graceBefore);
    report.abandonedWrites = await this.storage.removeAbandoned(graceBefore);
    if (Object.values(report).some((n) => n > 0))
      this.logger.info('Attachment cleanup removed files', { ...report });
    return report;
  }

  /** Deletes rows batch by batch (their files after each batch) until none is left. */
  private async drain(deleteBatch: () => Promise<string[]>): Promise<number> {
    let total = 0;
    for (;;) {
      const filenames = await deleteBatch();
      await this.removeFiles(filenames);
      total += filenames.length;
      if (filenames.length < BATCH) return total;
    }
  }

  private async removeOrphans(before: Date): Promise<number> {
    let removed = 0;
    let batch: string[] = [];
    const flush = async () => {
      const named = await this.attachments.existingFilenames(batch);
      const orphans = batch.filter((key) => !named.has(key));
      await this.removeFiles(orphans);
      removed += orphans.length;
      batch = [];
    };
    for await (const key of this.storage.listOlderThan(before)) {
      batch.push(key);
      if (batch.length >= BATCH) await flush();
    }
    if (batch.length) await flush();
    return removed;
  }

  private async removeFiles(keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      // A file that cannot be removed now is an orphan the next run finds again.
      await this.storage
        .remove(key)
        .catch((error: unknown) =>
          this.logger.warn('Could not remove a stored file', { key, ...describeError(error) }),
        );
    }
  }
}
