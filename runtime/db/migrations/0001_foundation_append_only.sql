-- Append-only truth: a trigger function that refuses UPDATE and DELETE on the table it guards.
-- Every truth table (receipts index, audit, case timeline, labels) attaches it:
--   CREATE TRIGGER <t>_append_only BEFORE UPDATE OR DELETE ON <t>
--     FOR EACH ROW EXECUTE FUNCTION fp_refuse_mutation();
CREATE OR REPLACE FUNCTION fp_refuse_mutation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'APPEND_ONLY_VIOLATION: % on %.% is refused; truth is append-only',
    TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME USING ERRCODE = 'P0001';
END;
$$;
