namespace Cutover.Migrations.Sql;

/// <summary>A position in a statement's tokens, with the look-ahead and keyword tests the parser needs.</summary>
internal sealed class TokenCursor(SqlStatement statement)
{
    private readonly IReadOnlyList<SqlToken> _tokens = statement.Tokens;

    public SqlStatement Statement { get; } = statement;
    public int Position { get; set; }
    public bool AtEnd => Position >= _tokens.Count;
    public SqlToken Current => Peek(0);

    /// <summary>Past the end this is a zero-length token just after the statement, so errors still have a position.</summary>
    public SqlToken Peek(int ahead)
    {
        var i = Position + ahead;
        if (i < _tokens.Count) return _tokens[i];
        var last = _tokens[^1];
        return new SqlToken(SqlTokenKind.Semicolon, last.End, 0, last.Line, last.Column + last.Length);
    }

    public bool Is(string keyword, int ahead = 0) => Position + ahead < _tokens.Count && Statement.IsKeyword(Position + ahead, keyword);

    public bool IsKind(SqlTokenKind kind, int ahead = 0) => Position + ahead < _tokens.Count && _tokens[Position + ahead].Kind == kind;

    /// <summary>Consumes the current token; at the end that is a syntax error (the statement stopped mid-clause).</summary>
    public SqlToken Advance() => AtEnd ? throw Error("unexpected end of statement") : _tokens[Position++];

    public bool Accept(string keyword)
    {
        if (!Is(keyword)) return false;
        Position++;
        return true;
    }

    public bool Accept(string first, string second)
    {
        if (!Is(first) || !Is(second, 1)) return false;
        Position += 2;
        return true;
    }

    public bool Accept(SqlTokenKind kind)
    {
        if (!IsKind(kind)) return false;
        Position++;
        return true;
    }

    public SqlToken Expect(string keyword)
    {
        if (!Is(keyword)) throw Error($"expected {keyword}");
        return Advance();
    }

    public SqlToken Expect(SqlTokenKind kind, string what)
    {
        if (!IsKind(kind)) throw Error($"expected {what}");
        return Advance();
    }

    public string Text(SqlToken token) => Statement.TokenText(token);

    public SqlSyntaxException Error(string expected)
    {
        var at = Current;
        var found = AtEnd ? "end of statement" : $"'{Text(at)}'";
        return new SqlSyntaxException($"{expected}, found {found}", at.Line, at.Column);
    }

    /// <summary>Skips a balanced ( ... ) or [ ... ] group starting at the current token.</summary>
    public void SkipGroup()
    {
        var depth = 0;
        do
        {
            if (AtEnd) throw Error("expected ')'");
            var kind = Advance().Kind;
            if (kind is SqlTokenKind.OpenParen or SqlTokenKind.OpenBracket) depth++;
            else if (kind is SqlTokenKind.CloseParen or SqlTokenKind.CloseBracket) depth--;
        } while (depth > 0);
    }
}
