ALTER TABLE "messages" ADD COLUMN "alternative_of" text;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "superseded" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_alternative_of_messages_id_fk" FOREIGN KEY ("alternative_of") REFERENCES "public"."messages"("id") ON DELETE set null ON UPDATE cascade;--> statement-breakpoint
CREATE INDEX "messages_alternative_of_idx" ON "messages" USING btree ("alternative_of");--> statement-breakpoint
-- Existing rows were one tree: every message without a parentId replied to the conversation's
-- newest one, so concurrent sends and answers interleaved with other people's messages became
-- forks that hid each other. Now only alternatives make branches. Siblings that regenerate
-- (answers under one question) and edit-and-resend (one author's messages under one parent)
-- made become versions of the first of them (a conversation's roots count as siblings: only
-- its first message and edits of root messages had no parent); all but the newest version leave
-- the active branch.
WITH versions AS (
  SELECT id,
         first_value(id) OVER siblings AS first_id,
         last_value(id) OVER siblings AS last_id
  FROM messages
  WHERE (parent_id IS NOT NULL AND role = 'ASSISTANT') OR role = 'USER'
  WINDOW siblings AS (
    PARTITION BY conversation_id, parent_id, role, CASE WHEN role = 'USER' THEN user_id END
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
UPDATE messages SET parent_id = NULL WHERE role = 'USER' AND parent_id IS NOT NULL;--> statement-breakpoint
-- Answers to a replaced message leave the active branch with it.
WITH RECURSIVE hidden AS (
  SELECT id FROM messages WHERE superseded
  UNION
  SELECT m.id FROM messages m JOIN hidden h ON m.parent_id = h.id
)
UPDATE messages SET superseded = true
WHERE id IN (SELECT id FROM hidden) AND NOT superseded;
