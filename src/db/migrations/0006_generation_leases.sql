ALTER TABLE "generations" ADD COLUMN "lease_owner" text;--> statement-breakpoint
ALTER TABLE "generations" ADD COLUMN "lease_expires_at" timestamp (3) with time zone;--> statement-breakpoint
CREATE INDEX "generations_running_lease_idx" ON "generations" USING btree ("lease_expires_at") WHERE status = 'RUNNING';--> statement-breakpoint
-- Answers left running by a version without leases get an expired one: with Redis the sweeper
-- then fails them (embedded, the start-up recovery does, as before).
UPDATE "generations" SET "lease_expires_at" = now() WHERE "status" = 'RUNNING' AND "lease_expires_at" IS NULL;