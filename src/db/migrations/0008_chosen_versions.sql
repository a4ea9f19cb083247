ALTER TABLE "messages" ADD COLUMN "chosen" boolean;--> statement-breakpoint
-- Until now the chosen version of a group was always its newest (each regenerate or
-- edit-and-resend replaced the others, and no version could be chosen back): mark it so, and the
-- group's other versions as not chosen. Messages without versions keep null.
WITH versions AS (
  SELECT id,
         row_number() OVER (
           PARTITION BY coalesce(alternative_of, id) ORDER BY created_at DESC, id DESC
         ) AS newest_first
  FROM messages
  WHERE alternative_of IS NOT NULL
     OR id IN (SELECT alternative_of FROM messages WHERE alternative_of IS NOT NULL)
)
UPDATE messages m
SET chosen = (v.newest_first = 1)
FROM versions v
WHERE v.id = m.id;--> statement-breakpoint
CREATE UNIQUE INDEX "messages_one_chosen_version_key" ON "messages" USING btree (coalesce("alternative_of", "id")) WHERE chosen;
