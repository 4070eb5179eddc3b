-- Documents are stored, not searched: no statistics on jsonb, json, bytea or array columns.
-- Autovacuum's ANALYZE sorts a sample of every column's values to build its histograms; for a
-- receipt, a decision record or an outbox value that means comparing 30,000 documents, for arrays
-- an element-wise compare. At full cap those columns made ANALYZE the largest part of PostgreSQL's
-- own work (docs/performance.md), and no plan uses them: the queries that filter on a document do
-- so through an expression (eb_ref->>'topic'), whose statistics come from the expression index.
-- fp_skip_document_statistics() sets the statistics target of every such column to 0 where it is
-- not already; this migration runs it once and the migrator runs it again after every migration
-- run, so a later table's documents are covered too. A future query that filters on a document's
-- whole value (a GIN index with @>) would set its column's target back in its own migration and
-- list the column in fp_analysed_documents below.
CREATE OR REPLACE FUNCTION fp_analysed_documents() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
  SELECT ARRAY[]::text[]
$$;

CREATE OR REPLACE FUNCTION fp_skip_document_statistics() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  c record;
  changed integer := 0;
BEGIN
  FOR c IN
    SELECT a.attrelid::regclass AS rel, a.attname AS col
      FROM pg_attribute a
      JOIN pg_class r ON r.oid = a.attrelid
      JOIN pg_type t ON t.oid = a.atttypid
     WHERE r.relnamespace = current_schema()::regnamespace AND r.relkind IN ('r', 'p')
       AND a.attnum > 0 AND NOT a.attisdropped
       AND (t.typname IN ('jsonb', 'json', 'bytea') OR t.typcategory = 'A')
       AND a.attstattarget IS DISTINCT FROM 0
       AND NOT (r.relname || '.' || a.attname = ANY (fp_analysed_documents()))
     ORDER BY 1, 2
  LOOP
    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS 0', c.rel, c.col);
    changed := changed + 1;
  END LOOP;
  RETURN changed;
END;
$$;

SELECT fp_skip_document_statistics();
