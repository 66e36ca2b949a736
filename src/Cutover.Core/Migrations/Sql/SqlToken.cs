namespace Cutover.Migrations.Sql;

public enum SqlTokenKind
{
    /// <summary>An unquoted identifier or keyword; keywords are not a separate kind because PostgreSQL lets most of them be names.</summary>
    Word,
    QuotedIdentifier,
    /// <summary>Any string constant: '', E'', U&amp;'', B'', X'', N''.</summary>
    String,
    DollarString,
    Number,
    /// <summary>A positional parameter such as <c>$1</c>.</summary>
    Parameter,
    Operator,
    /// <summary><c>::</c></summary>
    Cast,
    OpenParen,
    CloseParen,
    OpenBracket,
    CloseBracket,
    Comma,
    Semicolon,
    Dot,
    Colon,
    LineComment,
    BlockComment,
}

/// <summary>
/// One token: where it is, not what it says. The text stays in the source string so lexing a file allocates
/// one array of structs rather than a string per token.
/// </summary>
public readonly record struct SqlToken(SqlTokenKind Kind, int Offset, int Length, int Line, int Column)
{
    public int End => Offset + Length;

    public bool IsComment => Kind is SqlTokenKind.LineComment or SqlTokenKind.BlockComment;

    public ReadOnlySpan<char> Span(string source) => source.AsSpan(Offset, Length);

    public string Text(string source) => source.Substring(Offset, Length);

    /// <summary>Case-insensitive keyword test; only unquoted words can be keywords.</summary>
    public bool Is(string source, string keyword) =>
        Kind == SqlTokenKind.Word && Length == keyword.Length && source.AsSpan(Offset, Length).Equals(keyword, StringComparison.OrdinalIgnoreCase);
}
