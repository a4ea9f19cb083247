ALTER TABLE "messages" ADD COLUMN "alternative_of" text;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "superseded" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_alternative_of_messages_id_fk" FOREIGN KEY ("alternative_of") REFERENCES "public"."messages"("id") ON DELETE set null ON UPDATE cascade;--> statement-breakpoint
CREATE INDEX "messages_alternative_of_idx" ON "messages" USING btree ("alternative_of");--> statement-breakpoint
-- Existing rows were one tree: every message without a parentId replied to the conversation's
-- newest one, so concurrent sends and answers interleaved with other people's messages became
-- forks that hid each other. Now only versions make branches. Answers under one question can
-- only have come from regenerate: they become versions of the first of them, the newest active.
-- User messages under one parent may be an edit-and-resend or sends that raced: they all stay on
-- the active branch, since no acknowledged message may be hidden.
WITH versions AS (
  SELECT id,
         first_value(id) OVER siblings AS first_id,
         last_value(id) OVER siblings AS last_id
  FROM messages
  WHERE parent_id IS NOT NULL AND role = 'ASSISTANT'
  WINDOW siblings AS (
    PARTITION BY parent_id
    ORDER BY created_at, id
    ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
)
UPDATE messages m
SET alternative_of = nullif(v.first_id, m.id),
    superseded = (v.last_id <> m.id)
FROM versions v
WHERE v.id = m.id AND (v.first_id <> m.id OR v.last_id <> m.id);--> statement-breakpoint
-- A user message's parent was that default link, not a reply anyone chose: drop it, so that
-- replacing a message hides its own answers and not everything said after it.
UPDATE messages SET parent_id = NULL WHERE role = 'USER' AND parent_id IS NOT NULL;