namespace Cutover.Migrations.Sql;

/// <summary>PostgreSQL's table lock modes, weakest first, by the names its documentation and pg_locks use.</summary>
public static class PgLock
{
    public const string None = "";
    public const string AccessShare = "ACCESS SHARE";
    public const string RowShare = "ROW SHARE";
    public const string RowExclusive = "ROW EXCLUSIVE";
    public const string ShareUpdateExclusive = "SHARE UPDATE EXCLUSIVE";
    public const string Share = "SHARE";
    public const string ShareRowExclusive = "SHARE ROW EXCLUSIVE";
    public const string Exclusive = "EXCLUSIVE";
    public const string AccessExclusive = "ACCESS EXCLUSIVE";

    private static readonly string[] Order = [None, AccessShare, RowShare, RowExclusive, ShareUpdateExclusive, Share, ShareRowExclusive, Exclusive, AccessExclusive];

    public static string Strongest(string a, string b) => Array.IndexOf(Order, a) >= Array.IndexOf(Order, b) ? a : b;
}
