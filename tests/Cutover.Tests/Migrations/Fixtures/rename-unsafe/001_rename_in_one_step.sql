ALTER TABLE users RENAME COLUMN name TO full_name;
ALTER TABLE users ADD COLUMN x int NOT NULL;
ALTER TABLE users ALTER COLUMN id TYPE bigint;
CREATE INDEX users_full_name_idx ON users (full_name);
