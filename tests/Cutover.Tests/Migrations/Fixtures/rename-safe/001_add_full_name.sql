-- deploy 1 of 3: add the new column; old code ignores it
SET lock_timeout = '2s';
ALTER TABLE users ADD COLUMN full_name text;
