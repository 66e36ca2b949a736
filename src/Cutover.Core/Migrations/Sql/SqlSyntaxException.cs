namespace Cutover.Migrations.Sql;

/// <summary>SQL that cannot be tokenised or parsed; carries the 1-based position of the offending text.</summary>
public sealed class SqlSyntaxException(string message, int line, int column) : Exception(message)
{
    public int Line { get; } = line;
    public int Column { get; } = column;
}
