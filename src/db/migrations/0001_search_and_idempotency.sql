-- Overlapping bigrams of the CJK runs in a text, plus each run's last character: "大家你好" →
-- "大家 家你 你好 好". Indexed through to_tsvector('simple', …), they let a query find any
-- substring of two or more CJK characters as a phrase of bigrams, and one character as a prefix.
-- Hand-written (drizzle-kit does not manage functions); the fast path skips text without CJK.
CREATE OR REPLACE FUNCTION parley_cjk_bigrams(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  SELECT CASE WHEN t !~ '[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]' THEN ''
  ELSE (
    SELECT coalesce(string_agg(
             CASE WHEN substr(t, i + 1, 1) ~ '[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]'
                  THEN substr(t, i, 2) ELSE substr(t, i, 1) END, ' ' ORDER BY i), '')
    FROM generate_series(1, length(t)) AS i
    WHERE substr(t, i, 1) ~ '[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]'
  ) END
$$;--> statement-breakpoint
DROP INDEX "messages_conversation_id_created_at_idx";--> statement-breakpoint
ALTER TABLE "messages" drop column "search_vector";--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "search_vector" "tsvector" GENERATED ALWAYS AS (to_tsvector('english'::regconfig, content) || to_tsvector('simple'::regconfig, parley_cjk_bigrams(content))) STORED;--> statement-breakpoint
CREATE INDEX "messages_search_vector_idx" ON "messages" USING gin ("search_vector");--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "client_message_id" text;--> statement-breakpoint
CREATE UNIQUE INDEX "messages_user_id_client_message_id_key" ON "messages" USING btree ("user_id","client_message_id") WHERE client_message_id is not null;--> statement-breakpoint
CREATE INDEX "messages_conversation_id_created_at_idx" ON "messages" USING btree ("conversation_id","created_at","id");