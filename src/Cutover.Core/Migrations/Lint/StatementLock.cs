using Cutover.Migrations.Sql;

namespace Cutover.Migrations.Lint;

/// <summary>
/// The strongest table lock a statement takes, from PostgreSQL's documentation as squawk tabulates it
/// (docs: shared/reference/migrations.md, "Lock table").
/// </summary>
internal static class StatementLock
{
    public const string WholeDatabase = "exclusive use of the database (no other connections)";

    public static string Of(ParsedStatement parsed) => parsed switch
    {
        AlterTableStatement alter => Strongest(alter),
        CreateIndexStatement index => index.Concurrently ? PgLock.ShareUpdateExclusive : PgLock.Share,
        DropStatement { Kind: DropKind.Index, Concurrently: true } => PgLock.ShareUpdateExclusive,
        DropStatement { Kind: DropKind.Database } => WholeDatabase,
        DropStatement or TruncateStatement => PgLock.AccessExclusive,
        // A new table is invisible to other sessions until commit; its FKs lock the referenced tables, which
        // the statement's own lock does not describe.
        CreateTableStatement => PgLock.AccessExclusive,
        OpaqueStatement opaque => OfOpaque(opaque.Statement),
        _ => PgLock.None,
    };

    public static string Of(AlterTableAction action) => action switch
    {
        AddConstraintAction { Constraint.Kind: TableConstraintKind.ForeignKey } => PgLock.ShareRowExclusive,
        ValidateConstraintAction => PgLock.ShareUpdateExclusive,
        OtherAction other => other.Lock,
        _ => PgLock.AccessExclusive,
    };

    private static string Strongest(AlterTableStatement alter)
    {
        var strongest = PgLock.None;
        foreach (var action in alter.Actions) strongest = PgLock.Strongest(strongest, Of(action));
        return strongest;
    }

    private static string OfOpaque(SqlStatement s)
    {
        // Most opaque statements are DML or DO blocks: one keyword test and out.
        static bool Has(SqlStatement s, string word)
        {
            for (var i = 0; i < s.Tokens.Count; i++) if (s.IsKeyword(i, word)) return true;
            return false;
        }
        if (s.IsKeyword(0, "VACUUM")) return Has(s, "FULL") ? PgLock.AccessExclusive : PgLock.ShareUpdateExclusive;
        if (s.IsKeyword(0, "CLUSTER")) return PgLock.AccessExclusive;
        if (s.IsKeyword(0, "REFRESH")) return Has(s, "CONCURRENTLY") ? PgLock.Exclusive : PgLock.AccessExclusive;
        if (s.IsKeyword(0, "REINDEX")) return Has(s, "CONCURRENTLY") ? PgLock.ShareUpdateExclusive : PgLock.AccessExclusive;
        if (s.IsKeyword(0, "COMMENT")) return PgLock.ShareUpdateExclusive;
        if (s.IsKeyword(0, "CREATE") && Has(s, "TRIGGER")) return PgLock.ShareRowExclusive;
        if (s.IsKeyword(0, "LOCK")) return Has(s, "MODE") ? LockStatementMode(s) : PgLock.AccessExclusive;
        return PgLock.None;
    }

    private static string LockStatementMode(SqlStatement s)
    {
        var inAt = -1;
        for (var i = 0; i < s.Tokens.Count; i++) if (s.IsKeyword(i, "IN")) inAt = i;
        if (inAt < 0) return PgLock.AccessExclusive;
        var words = new List<string>();
        for (var i = inAt + 1; i < s.Tokens.Count && !s.IsKeyword(i, "MODE"); i++) words.Add(s.TokenText(s.Tokens[i]).ToUpperInvariant());
        return string.Join(' ', words);
    }
}
