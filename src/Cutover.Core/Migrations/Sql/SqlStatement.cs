namespace Cutover.Migrations.Sql;

/// <summary>
/// One statement of a migration file. <see cref="Tokens"/> excludes comments and the trailing <c>;</c>; their
/// offsets are into the whole file, so <see cref="TokenText"/> maps them into <see cref="Text"/>.
/// </summary>
public sealed record SqlStatement(
    string Text,
    int Offset,
    int Line,
    int Column,
    IReadOnlyList<SqlToken> Tokens,
    IReadOnlyList<SqlComment> LeadingComments,
    bool IsTransactionControl,
    bool CannotRunInTransaction)
{
    public ReadOnlySpan<char> TokenSpan(SqlToken token) => Text.AsSpan(token.Offset - Offset, token.Length);

    public string TokenText(SqlToken token) => Text.Substring(token.Offset - Offset, token.Length);

    public bool IsKeyword(int index, string keyword) =>
        index >= 0 && index < Tokens.Count && Tokens[index].Kind == SqlTokenKind.Word
        && TokenSpan(Tokens[index]).Equals(keyword, StringComparison.OrdinalIgnoreCase);
}
