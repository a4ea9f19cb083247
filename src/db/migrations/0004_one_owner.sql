-- Before this migration a membership change was several separate statements, so a race could
-- leave a conversation with two OWNERs, with none, or with nobody in it. Repair such rows first
-- (the index below would refuse the first kind), then let the index refuse a second OWNER.
-- 1. Several OWNERs: the longest-serving keeps ownership, the others become ADMINs.
UPDATE "conversation_participants" p SET "role" = 'ADMIN'
WHERE p."role" = 'OWNER' AND EXISTS (
  SELECT 1 FROM "conversation_participants" o
  WHERE o."conversation_id" = p."conversation_id" AND o."role" = 'OWNER'
    AND (o."joined_at", o."id") < (p."joined_at", p."id")
);--> statement-breakpoint
-- 2. A live conversation with participants but no OWNER: the longest-serving ADMIN, else
--    MEMBER, inherits it, as if the owner had left.
UPDATE "conversation_participants" p SET "role" = 'OWNER'
FROM (
  SELECT DISTINCT ON (cp."conversation_id") cp."id"
  FROM "conversation_participants" cp
  JOIN "conversations" c ON c."id" = cp."conversation_id" AND NOT c."is_deleted"
  WHERE NOT EXISTS (
    SELECT 1 FROM "conversation_participants" o
    WHERE o."conversation_id" = cp."conversation_id" AND o."role" = 'OWNER'
  )
  ORDER BY cp."conversation_id", CASE cp."role" WHEN 'ADMIN' THEN 0 ELSE 1 END, cp."joined_at", cp."id"
) heir
WHERE p."id" = heir."id";--> statement-breakpoint
-- 3. A live conversation nobody is in any more is deleted, as if the last one out had left.
UPDATE "conversations" c SET "is_deleted" = true
WHERE NOT c."is_deleted" AND NOT EXISTS (
  SELECT 1 FROM "conversation_participants" p WHERE p."conversation_id" = c."id"
);--> statement-breakpoint
CREATE UNIQUE INDEX "conversation_participants_one_owner_key" ON "conversation_participants" USING btree ("conversation_id") WHERE role = 'OWNER';
