ALTER TABLE "generations" ADD COLUMN "lease_owner" text;--> statement-breakpoint
ALTER TABLE "generations" ADD COLUMN "lease_expires_at" timestamp (3) with time zone;--> statement-breakpoint
CREATE INDEX "generations_running_lease_idx" ON "generations" USING btree ("lease_expires_at") WHERE status = 'RUNNING';