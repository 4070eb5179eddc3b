-- Truth cannot be wiped: every table that carries the append-only row trigger (fp_refuse_mutation)
-- also refuses TRUNCATE, with a statement trigger on the same function (TG_OP = 'TRUNCATE').
-- fp_guard_truth_tables() attaches the guard wherever it is missing; this migration runs it once
-- and the migrator runs it again after every migration run, so a truth table added later is
-- guarded even if its migration only attaches the row trigger. New truth tables call
--   SELECT fp_make_append_only('<table>');
-- which attaches both triggers.
CREATE OR REPLACE FUNCTION fp_guard_truth_tables() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  t record;
  guarded integer := 0;
BEGIN
  FOR t IN
    SELECT DISTINCT c.oid::regclass AS rel, c.relname AS name
      FROM pg_trigger tr
      JOIN pg_class c ON c.oid = tr.tgrelid
      JOIN pg_proc p ON p.oid = tr.tgfoid
     WHERE p.proname = 'fp_refuse_mutation' AND NOT tr.tgisinternal AND (tr.tgtype & 32) = 0
       AND NOT EXISTS (SELECT 1 FROM pg_trigger x JOIN pg_proc xp ON xp.oid = x.tgfoid
                        WHERE x.tgrelid = c.oid AND xp.proname = 'fp_refuse_mutation' AND (x.tgtype & 32) <> 0)
  LOOP
    EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION fp_refuse_mutation()',
                   t.name || '_no_truncate', t.rel);
    guarded := guarded + 1;
  END LOOP;
  RETURN guarded;
END;
$$;

CREATE OR REPLACE FUNCTION fp_make_append_only(target regclass) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  name text := (SELECT relname FROM pg_class WHERE oid = target);
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger tr JOIN pg_proc p ON p.oid = tr.tgfoid
                  WHERE tr.tgrelid = target AND p.proname = 'fp_refuse_mutation' AND (tr.tgtype & 32) = 0) THEN
    EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION fp_refuse_mutation()',
                   name || '_append_only', target);
  END IF;
  PERFORM fp_guard_truth_tables();
END;
$$;

SELECT fp_guard_truth_tables();
