namespace Cutover.Migrations.Verify;

/// <summary>A lock a statement took on a table or index that existed before the migration.</summary>
public sealed record TakenLock(string Relation, string Mode);

/// <summary>A table PostgreSQL rewrote, with the reason its table_rewrite event gave (or "relfilenode changed").</summary>
public sealed record TableRewrite(string Table, string Reason);

/// <summary>What running one statement on a real PostgreSQL showed.</summary>
public sealed record StatementFacts(string File, int Line, int Column, IReadOnlyList<TakenLock> Locks, IReadOnlyList<TableRewrite> Rewrites, string? Note, string? Error)
{
    /// <summary>The strongest lock mode taken, as PostgreSQL's documentation names it ("ACCESS EXCLUSIVE"), or null.</summary>
    public string? StrongestLock => Locks.Count == 0 ? null : Locks.MaxBy(l => LockModes.Strength(l.Mode))!.Mode;
}

public static class LockModes
{
    private static readonly string[] Order =
        ["ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"];

    public static int Strength(string mode) => Array.IndexOf(Order, mode);

    /// <summary>pg_locks says "AccessExclusiveLock"; people and the docs say "ACCESS EXCLUSIVE".</summary>
    public static string FromPgLocks(string mode)
    {
        var name = mode.EndsWith("Lock", StringComparison.Ordinal) ? mode[..^4] : mode;
        var words = new System.Text.StringBuilder();
        foreach (var c in name)
        {
            if (char.IsUpper(c) && words.Length > 0) words.Append(' ');
            words.Append(char.ToUpperInvariant(c));
        }
        return words.ToString();
    }
}
