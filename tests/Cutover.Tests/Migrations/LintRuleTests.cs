using Cutover.Migrations.Lint;

namespace Cutover.Tests.Migrations;

public class LintRuleTests
{
    internal static FileLintResult Lint(string sql, LintOptions? options = null) =>
        new MigrationLinter(options ?? new LintOptions()).Lint("m.sql", sql);

    internal static IEnumerable<LintFinding> Of(FileLintResult result, string rule) => result.Findings.Where(f => f.Rule == rule);

    [Theory]
    [InlineData("ALTER TABLE users ADD COLUMN x int NOT NULL;", "adding-required-field", 1, 36)]
    [InlineData("ALTER TABLE users ADD COLUMN id2 uuid DEFAULT gen_random_uuid();", "adding-field-with-default", 1, 39)]
    [InlineData("ALTER TABLE users ADD COLUMN n bigint DEFAULT nextval('s'::regclass);", "adding-field-with-default", 1, 39)]
    [InlineData("ALTER TABLE users ADD COLUMN r float DEFAULT random() * 10;", "adding-field-with-default", 1, 38)]
    [InlineData("ALTER TABLE users ADD COLUMN t timestamptz DEFAULT clock_timestamp();", "adding-field-with-default", 1, 44)]
    [InlineData("ALTER TABLE users ADD COLUMN s text DEFAULT my_func();", "adding-field-with-default", 1, 37)]
    [InlineData("ALTER TABLE t ADD COLUMN c int GENERATED ALWAYS AS (a + 1) STORED;", "adding-field-with-default", 1, 32)]
    [InlineData("ALTER TABLE items ADD COLUMN n bigserial;", "adding-field-with-default", 1, 32)]
    [InlineData("ALTER TABLE users ALTER COLUMN email SET NOT NULL;", "adding-not-nullable-field", 1, 38)]
    [InlineData("ALTER TABLE users DROP COLUMN name;", "ban-drop-column", 1, 19)]
    [InlineData("DROP TABLE users;", "ban-drop-table", 1, 12)]
    [InlineData("DROP DATABASE app;", "ban-drop-database", 1, 15)]
    [InlineData("TRUNCATE users;", "ban-truncate", 1, 1)]
    [InlineData("ALTER TABLE users RENAME COLUMN name TO full_name;", "renaming-column", 1, 19)]
    [InlineData("ALTER TABLE users RENAME name TO full_name;", "renaming-column", 1, 19)]
    [InlineData("ALTER TABLE users RENAME TO people;", "renaming-table", 1, 19)]
    [InlineData("ALTER TABLE users ALTER COLUMN id TYPE bigint;", "changing-column-type", 1, 19)]
    [InlineData("CREATE INDEX users_email_idx ON users (email);", "require-concurrent-index-creation", 1, 8)]
    [InlineData("CREATE UNIQUE INDEX users_email_idx ON users (email);", "require-concurrent-index-creation", 1, 15)]
    [InlineData("DROP INDEX users_email_idx;", "require-concurrent-index-deletion", 1, 6)]
    [InlineData("BEGIN;\nCREATE INDEX CONCURRENTLY i ON t (a);\nCOMMIT;", "ban-concurrent-index-creation-in-transaction", 2, 14)]
    [InlineData("ALTER TABLE orders ADD CONSTRAINT positive CHECK (total > 0);", "constraint-missing-not-valid", 1, 44)]
    [InlineData("BEGIN;\nALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT c;\nCOMMIT;", "constraint-missing-not-valid", 3, 15)]
    [InlineData("ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);", "constraint-missing-not-valid", 1, 50)]
    [InlineData("ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);", "adding-foreign-key-constraint", 1, 50)]
    [InlineData("ALTER TABLE orders ADD COLUMN user_id bigint REFERENCES users (id);", "adding-foreign-key-constraint", 1, 46)]
    [InlineData("ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);", "disallowed-unique-constraint", 1, 50)]
    [InlineData("ALTER TABLE users ADD COLUMN email text UNIQUE;", "disallowed-unique-constraint", 1, 41)]
    [InlineData("ALTER TABLE items ADD PRIMARY KEY (id);", "adding-serial-primary-key-field", 1, 23)]
    [InlineData("ALTER TABLE items ADD COLUMN id bigserial PRIMARY KEY;", "adding-serial-primary-key-field", 1, 43)]
    [InlineData("ALTER TABLE users ADD COLUMN x text;", "require-lock-timeout", 1, 1)]
    [InlineData("SELECT 1;\n  TRUNCATE users;", "require-lock-timeout", 2, 3)]
    [InlineData("ALTER TABLE users ADD COLUMN a text;\nALTER TABLE users ADD COLUMN b text;", "prefer-robust-stmts", 1, 19)]
    [InlineData("CREATE TABLE a (id int);\nCREATE TABLE b (id int);", "prefer-robust-stmts", 1, 1)]
    [InlineData("CREATE INDEX CONCURRENTLY ON a (x);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS b_x ON b (x);", "prefer-robust-stmts", 1, 8)]
    [InlineData("SELECT 1;\nDROP INDEX CONCURRENTLY a_x;", "prefer-robust-stmts", 2, 6)]
    [InlineData("BEGIN;\nBEGIN;\nCOMMIT;", "transaction-nesting", 2, 1)]
    [InlineData("SELECT 1;\nCOMMIT;", "transaction-nesting", 2, 1)]
    [InlineData("SELECT 1;\n BEGIN;\nSELECT 2;", "transaction-nesting", 2, 2)]
    [InlineData("ALTER TABLE users ADD COLUMN;", "syntax-error", 1, 29)]
    [InlineData("SELECT 1;\nSELECT 'abc;\n", "syntax-error", 2, 8)]
    public void Flags(string sql, string rule, int line, int column)
    {
        // Some statements are flagged more than once by the same rule (prefer-robust-stmts on every line).
        var finding = Assert.Single(Of(Lint(sql), rule), f => f.Line == line);
        Assert.Equal(column, finding.Column);
        Assert.False(string.IsNullOrWhiteSpace(finding.Message));
        Assert.False(string.IsNullOrWhiteSpace(finding.SafeAlternative));
        Assert.Equal(RuleIds.SeverityOf(rule), finding.Severity);
    }

    [Theory]
    [InlineData("ALTER TABLE users ADD COLUMN x int NOT NULL DEFAULT 0;", "adding-required-field")]
    [InlineData("ALTER TABLE users ADD COLUMN x bigint GENERATED ALWAYS AS IDENTITY NOT NULL;", "adding-required-field")]
    [InlineData("CREATE TABLE users (id int);\nALTER TABLE users ADD COLUMN x int NOT NULL;", "adding-required-field")]
    [InlineData("ALTER TABLE users ADD COLUMN created_at timestamptz DEFAULT now();", "adding-field-with-default")]
    [InlineData("ALTER TABLE users ADD COLUMN created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP;", "adding-field-with-default")]
    [InlineData("ALTER TABLE users ADD COLUMN tags jsonb DEFAULT '{}'::jsonb;", "adding-field-with-default")]
    [InlineData("ALTER TABLE users ADD COLUMN n numeric DEFAULT CAST(-1.5 AS numeric(10,2));", "adding-field-with-default")]
    [InlineData("ALTER TABLE users ADD COLUMN d interval DEFAULT interval '1 day' * 2;", "adding-field-with-default")]
    [InlineData("ALTER TABLE users ADD COLUMN s varchar(10) DEFAULT 'x'::varchar(10);", "adding-field-with-default")]
    [InlineData("ALTER TABLE users ALTER COLUMN id SET DEFAULT gen_random_uuid();", "adding-field-with-default")]
    [InlineData("ALTER TABLE t ADD COLUMN c int GENERATED ALWAYS AS (a + 1) VIRTUAL;", "adding-field-with-default")]
    [InlineData("ALTER TABLE users ALTER COLUMN email DROP NOT NULL;", "adding-not-nullable-field")]
    [InlineData("ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT users_email_not_null;\nALTER TABLE users ALTER COLUMN email SET NOT NULL;", "adding-not-nullable-field")]
    [InlineData("ALTER TABLE users DROP CONSTRAINT c;", "ban-drop-column")]
    [InlineData("CREATE TABLE tmp (id int);\nDROP TABLE tmp;", "ban-drop-table")]
    [InlineData("DROP SCHEMA app;", "ban-drop-database")]
    [InlineData("DELETE FROM users WHERE id = 1;", "ban-truncate")]
    [InlineData("ALTER TABLE users RENAME CONSTRAINT a TO b;", "renaming-column")]
    [InlineData("ALTER INDEX i RENAME TO j;", "renaming-table")]
    [InlineData("ALTER TABLE users ALTER COLUMN id SET DEFAULT 0;", "changing-column-type")]
    [InlineData("CREATE INDEX CONCURRENTLY users_email_idx ON users (email);", "require-concurrent-index-creation")]
    [InlineData("CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);", "require-concurrent-index-creation")]
    [InlineData("DROP INDEX CONCURRENTLY users_email_idx;", "require-concurrent-index-deletion")]
    [InlineData("CREATE INDEX i ON t (a);\nDROP INDEX i;", "require-concurrent-index-deletion")]
    [InlineData("CREATE INDEX CONCURRENTLY i ON t (a);", "ban-concurrent-index-creation-in-transaction")]
    [InlineData("BEGIN;\nSELECT 1;\nCOMMIT;\nCREATE INDEX CONCURRENTLY i ON t (a);", "ban-concurrent-index-creation-in-transaction")]
    [InlineData("ALTER TABLE orders ADD CONSTRAINT positive CHECK (total > 0) NOT VALID;", "constraint-missing-not-valid")]
    [InlineData("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT c;", "constraint-missing-not-valid")]
    [InlineData("BEGIN;\nALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nCOMMIT;\nALTER TABLE t VALIDATE CONSTRAINT c;", "constraint-missing-not-valid")]
    [InlineData("ALTER TABLE users ADD CONSTRAINT u UNIQUE USING INDEX users_email_key;", "constraint-missing-not-valid")]
    [InlineData("CREATE TABLE orders (id int, user_id int);\nALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id);", "constraint-missing-not-valid")]
    [InlineData("ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;", "adding-foreign-key-constraint")]
    [InlineData("CREATE TABLE orders (id int, user_id bigint REFERENCES users (id));", "adding-foreign-key-constraint")]
    [InlineData("ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;", "disallowed-unique-constraint")]
    [InlineData("CREATE TABLE users (email text UNIQUE);", "disallowed-unique-constraint")]
    [InlineData("ALTER TABLE items ADD CONSTRAINT items_pkey PRIMARY KEY USING INDEX items_pkey_idx;", "adding-serial-primary-key-field")]
    [InlineData("ALTER TABLE items ADD COLUMN id bigserial;", "adding-serial-primary-key-field")]
    [InlineData("SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN x text;", "require-lock-timeout")]
    [InlineData("BEGIN;\nSET LOCAL lock_timeout = '2s';\nALTER TABLE users ADD COLUMN x text;\nCOMMIT;", "require-lock-timeout")]
    [InlineData("CREATE INDEX CONCURRENTLY i ON users (x);", "require-lock-timeout")]
    [InlineData("ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES users (id) NOT VALID;", "require-lock-timeout")]
    [InlineData("CREATE TABLE t (id int);\nALTER TABLE t ADD COLUMN x text;", "require-lock-timeout")]
    [InlineData("ALTER TABLE users ADD COLUMN x text;", "prefer-robust-stmts")]
    [InlineData("SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN x text;", "prefer-robust-stmts")]
    [InlineData("ALTER TABLE users ADD COLUMN IF NOT EXISTS a text;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON users (a);", "prefer-robust-stmts")]
    [InlineData("BEGIN;\nALTER TABLE users ADD COLUMN a text;\nALTER TABLE users ADD COLUMN b text;\nCOMMIT;", "prefer-robust-stmts")]
    [InlineData("BEGIN;\nSELECT 1;\nCOMMIT;", "transaction-nesting")]
    [InlineData("START TRANSACTION;\nSAVEPOINT a;\nROLLBACK TO SAVEPOINT a;\nEND;", "transaction-nesting")]
    [InlineData("ALTER TABLE users ADD COLUMN x int;", "syntax-error")]
    public void Does_not_flag(string sql, string rule) => Assert.Empty(Of(Lint(sql), rule));

    [Theory]
    [InlineData("DO $$ BEGIN ALTER TABLE users DROP COLUMN name; TRUNCATE users; END $$;")]
    [InlineData("DO $body$ BEGIN EXECUTE 'DROP TABLE users'; END $body$;")]
    [InlineData("-- ALTER TABLE users DROP COLUMN name;\nSELECT 1;")]
    [InlineData("/* DROP TABLE users; /* nested; */ TRUNCATE users; */ SELECT 1;")]
    [InlineData("SELECT 'ALTER TABLE users DROP COLUMN name;';")]
    [InlineData("SELECT E'\\'; DROP TABLE users; --';")]
    [InlineData("SELECT \"DROP TABLE users;\" FROM t;")]
    [InlineData("UPDATE users SET full_name = name WHERE full_name IS NULL;")]
    public void Rules_do_not_fire_inside_comments_strings_or_bodies(string sql) => Assert.Empty(Lint(sql).Findings);

    [Theory]
    [InlineData(10, 1)]
    [InlineData(11, 0)]
    [InlineData(15, 0)]
    public void A_constant_default_rewrites_only_before_pg_11(int pgVersion, int expected)
    {
        var result = Lint("ALTER TABLE users ADD COLUMN x int DEFAULT 0;", new LintOptions { PgVersion = pgVersion });
        Assert.Equal(expected, Of(result, RuleIds.AddingFieldWithDefault).Count());
        if (expected == 1) Assert.Contains("PostgreSQL 11", Of(result, RuleIds.AddingFieldWithDefault).Single().Message);
    }

    [Fact]
    public void Default_null_never_rewrites() =>
        Assert.Empty(Of(Lint("ALTER TABLE users ADD COLUMN x int DEFAULT NULL;", new LintOptions { PgVersion = 10 }), RuleIds.AddingFieldWithDefault));

    [Fact]
    public void Findings_are_in_file_order()
    {
        var result = Lint("ALTER TABLE users ADD COLUMN x int NOT NULL;\nDROP TABLE t;");
        Assert.Equal([(1, 1), (1, 19), (1, 36), (2, 6), (2, 12)], result.Findings.Select(f => (f.Line, f.Column)));
    }

    [Fact]
    public void A_validated_not_null_check_helps_set_not_null_only_from_pg_12()
    {
        const string sql = "ALTER TABLE users ADD CONSTRAINT c CHECK (email IS NOT NULL) NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT c;\nALTER TABLE users ALTER COLUMN email SET NOT NULL;";
        Assert.Empty(Of(Lint(sql, new LintOptions { PgVersion = 12 }), RuleIds.AddingNotNullableField));
        Assert.Equal(3, Assert.Single(Of(Lint(sql, new LintOptions { PgVersion = 11 }), RuleIds.AddingNotNullableField)).Line);
        // Not validated: still a scan.
        Assert.Single(Of(Lint("ALTER TABLE users ADD CONSTRAINT c CHECK (email IS NOT NULL) NOT VALID;\nALTER TABLE users ALTER COLUMN email SET NOT NULL;"), RuleIds.AddingNotNullableField));
    }

    [Fact]
    public void Lock_timeout_is_reported_once_per_file_and_not_when_the_runner_sets_it()
    {
        const string sql = "ALTER TABLE a ADD COLUMN x text;\nALTER TABLE b ADD COLUMN y text;";
        Assert.Single(Of(Lint(sql), RuleIds.RequireLockTimeout));
        Assert.Empty(Of(Lint(sql, new LintOptions { LockTimeoutSetByRunner = true }), RuleIds.RequireLockTimeout));
        Assert.Single(Of(Lint("SET lock_timeout = 0;\nALTER TABLE a ADD COLUMN x text;"), RuleIds.RequireLockTimeout));
        Assert.Single(Of(Lint("SET lock_timeout = '1s';\nRESET lock_timeout;\nALTER TABLE a ADD COLUMN x text;"), RuleIds.RequireLockTimeout));
    }

    [Fact]
    public void Findings_carry_lock_message_naming_the_table_and_a_safe_alternative()
    {
        var finding = Assert.Single(Of(Lint("ALTER TABLE users RENAME COLUMN name TO full_name;"), RuleIds.RenamingColumn));
        Assert.Equal("ACCESS EXCLUSIVE", finding.Lock);
        Assert.Contains("users.name", finding.Message);
        Assert.Contains("ALTER TABLE users ADD COLUMN full_name", finding.SafeAlternative);
        Assert.Contains("DROP COLUMN name", finding.SafeAlternative);
        Assert.Equal(("ALTER TABLE users RENAME COLUMN name TO full_name", 1, 1), (finding.Excerpt, finding.ExcerptLine, finding.ExcerptColumn));

        Assert.Equal("SHARE", Of(Lint("CREATE INDEX i ON t (a);"), RuleIds.RequireConcurrentIndexCreation).Single().Lock);
        Assert.Equal("SHARE ROW EXCLUSIVE", Of(Lint("ALTER TABLE o ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES users (id);"), RuleIds.AddingForeignKeyConstraint).Single().Lock);
    }

    [Fact]
    public void A_syntax_error_in_one_statement_does_not_stop_the_others()
    {
        var result = Lint("ALTER TABLE users ADD COLUMN;\nALTER TABLE users DROP COLUMN name;");
        Assert.Equal(["syntax-error", "ban-drop-column"], result.Findings.Where(f => f.Severity == Severity.Error).Select(f => f.Rule));
    }
}
