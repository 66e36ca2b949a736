-- deploy 3 of 3: nothing reads name any more
-- cutover:safety-assured old code stopped reading name in deploy 2
ALTER TABLE users DROP COLUMN name;
