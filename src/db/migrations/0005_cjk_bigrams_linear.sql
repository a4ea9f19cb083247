-- parley_cjk_bigrams (migration 0001), the same output in linear time. The first version took
-- substr(t, i, …) at every position i, and substr walks a multibyte text from its start: time
-- quadratic in the text's length, 3 s of PostgreSQL CPU (7–8 s of PGlite, on the server's own
-- thread) to index one 32,000-character message with a CJK character in it. This one splits the
-- text into characters once and pairs each with the next.
CREATE OR REPLACE FUNCTION parley_cjk_bigrams(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  SELECT CASE WHEN t !~ '[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]' THEN ''
  ELSE (
    SELECT coalesce(string_agg(
             CASE WHEN next_c ~ '[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]'
                  THEN c || next_c ELSE c END, ' ' ORDER BY i), '')
    FROM (
      SELECT c, i, lead(c) OVER (ORDER BY i) AS next_c
      FROM unnest(string_to_array(t, NULL)) WITH ORDINALITY AS chars(c, i)
    ) paired
    WHERE c ~ '[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]'
  ) END
$$;
