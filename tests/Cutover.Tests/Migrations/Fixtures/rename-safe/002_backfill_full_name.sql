-- deploy 2 of 3: new code writes both columns; backfill the old rows
UPDATE users SET full_name = name WHERE full_name IS NULL;
