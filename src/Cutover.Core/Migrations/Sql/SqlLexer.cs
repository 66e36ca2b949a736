namespace Cutover.Migrations.Sql;

/// <summary>
/// PostgreSQL's lexical rules, hand-written: a migration's <c>;</c> may sit in a comment, a string or a
/// function body, and only the lexer knows which. Comments are returned as tokens so the splitter can keep
/// the ones that precede a statement (suppressions live there). psql meta-commands (a line starting with a
/// backslash) are skipped because migration files written for psql contain them.
/// </summary>
public sealed class SqlLexer
{
    private readonly string _text;
    private int _pos;
    private int _line = 1;
    private int _lineStart;

    public SqlLexer(string text) => _text = text;

    public static List<SqlToken> Tokenize(string text) => new SqlLexer(text).ReadAll();

    public List<SqlToken> ReadAll()
    {
        // About one token per six characters in typical DDL; a good guess saves regrowing.
        var tokens = new List<SqlToken>(_text.Length / 6 + 4);
        while (Next() is { } token) tokens.Add(token);
        return tokens;
    }

    /// <summary>The next token, comments included; false at the end of the text.</summary>
    public bool TryNext(out SqlToken token)
    {
        var next = Next();
        token = next.GetValueOrDefault();
        return next.HasValue;
    }

    private SqlToken? Next()
    {
        var text = _text;
        while (true)
        {
            if (_pos >= text.Length) return null;
            var c = text[_pos];
            if (c == '\n')
            {
                NewLine(_pos);
                _pos++;
            }
            else if (c == '\\' && AtLineStart())
            {
                // psql meta-command (\set, \connect, \i ...): not SQL, runs to the end of the line.
                while (_pos < text.Length && text[_pos] != '\n') _pos++;
            }
            else if (char.IsWhiteSpace(c)) _pos++;
            else break;
        }

        var start = _pos;
        var line = _line;
        var column = start - _lineStart + 1;
        var ch = text[start];
        var next = start + 1 < text.Length ? text[start + 1] : '\0';

        SqlTokenKind kind;
        if (ch == '-' && next == '-')
        {
            while (_pos < text.Length && text[_pos] != '\n') _pos++;
            kind = SqlTokenKind.LineComment;
        }
        else if (ch == '/' && next == '*')
        {
            BlockComment(line, column);
            kind = SqlTokenKind.BlockComment;
        }
        else if (ch == '\'')
        {
            QuotedString(backslashEscapes: false, line, column);
            kind = SqlTokenKind.String;
        }
        else if (ch == '"')
        {
            QuotedIdentifier(line, column);
            kind = SqlTokenKind.QuotedIdentifier;
        }
        else if ((ch is 'e' or 'E') && next == '\'')
        {
            _pos++;
            QuotedString(backslashEscapes: true, line, column);
            kind = SqlTokenKind.String;
        }
        else if ((ch is 'b' or 'B' or 'x' or 'X' or 'n' or 'N') && next == '\'')
        {
            _pos++;
            QuotedString(backslashEscapes: false, line, column);
            kind = SqlTokenKind.String;
        }
        else if ((ch is 'u' or 'U') && next == '&' && start + 2 < text.Length && text[start + 2] is '\'' or '"')
        {
            _pos += 2;
            if (text[_pos] == '\'')
            {
                QuotedString(backslashEscapes: false, line, column);
                kind = SqlTokenKind.String;
            }
            else
            {
                QuotedIdentifier(line, column);
                kind = SqlTokenKind.QuotedIdentifier;
            }
        }
        else if (IsIdentStart(ch))
        {
            _pos++;
            while (_pos < text.Length && IsIdentPart(text[_pos])) _pos++;
            kind = SqlTokenKind.Word;
        }
        else if (char.IsAsciiDigit(ch) || (ch == '.' && char.IsAsciiDigit(next)))
        {
            Number();
            kind = SqlTokenKind.Number;
        }
        else if (ch == '$')
        {
            kind = Dollar(line, column);
        }
        else
        {
            _pos++;
            switch (ch)
            {
                case '(': kind = SqlTokenKind.OpenParen; break;
                case ')': kind = SqlTokenKind.CloseParen; break;
                case '[': kind = SqlTokenKind.OpenBracket; break;
                case ']': kind = SqlTokenKind.CloseBracket; break;
                case ',': kind = SqlTokenKind.Comma; break;
                case ';': kind = SqlTokenKind.Semicolon; break;
                case '.': kind = SqlTokenKind.Dot; break;
                case ':':
                    if (next == ':')
                    {
                        _pos++;
                        kind = SqlTokenKind.Cast;
                    }
                    else kind = SqlTokenKind.Colon;
                    break;
                default:
                    if (IsOperatorChar(ch)) Operator();
                    kind = SqlTokenKind.Operator;
                    break;
            }
        }
        return new SqlToken(kind, start, _pos - start, line, column);
    }

    private bool AtLineStart()
    {
        for (var i = _pos - 1; i >= _lineStart; i--)
            if (_text[i] is not (' ' or '\t' or '\r')) return false;
        return true;
    }

    private void NewLine(int newlineOffset)
    {
        _line++;
        _lineStart = newlineOffset + 1;
    }

    /// <summary>Block comments nest in PostgreSQL (unlike the SQL standard's reading in most other databases).</summary>
    private void BlockComment(int line, int column)
    {
        var text = _text;
        var depth = 0;
        while (_pos < text.Length)
        {
            var c = text[_pos];
            if (c == '/' && _pos + 1 < text.Length && text[_pos + 1] == '*')
            {
                depth++;
                _pos += 2;
            }
            else if (c == '*' && _pos + 1 < text.Length && text[_pos + 1] == '/')
            {
                depth--;
                _pos += 2;
                if (depth == 0) return;
            }
            else
            {
                if (c == '\n') NewLine(_pos);
                _pos++;
            }
        }
        throw new SqlSyntaxException("unterminated /* comment", line, column);
    }

    /// <summary>At the opening quote. '' is an escaped quote; in E'' strings so is \'.</summary>
    private void QuotedString(bool backslashEscapes, int line, int column)
    {
        var text = _text;
        _pos++;
        while (_pos < text.Length)
        {
            var c = text[_pos];
            if (c == '\'')
            {
                if (_pos + 1 < text.Length && text[_pos + 1] == '\'')
                {
                    _pos += 2;
                    continue;
                }
                _pos++;
                return;
            }
            if (c == '\\' && backslashEscapes && _pos + 1 < text.Length)
            {
                if (text[_pos + 1] == '\n') NewLine(_pos + 1);
                _pos += 2;
                continue;
            }
            if (c == '\n') NewLine(_pos);
            _pos++;
        }
        throw new SqlSyntaxException("unterminated quoted string", line, column);
    }

    private void QuotedIdentifier(int line, int column)
    {
        var text = _text;
        _pos++;
        while (_pos < text.Length)
        {
            var c = text[_pos];
            if (c == '"')
            {
                if (_pos + 1 < text.Length && text[_pos + 1] == '"')
                {
                    _pos += 2;
                    continue;
                }
                _pos++;
                return;
            }
            if (c == '\n') NewLine(_pos);
            _pos++;
        }
        throw new SqlSyntaxException("unterminated quoted identifier", line, column);
    }

    private void Number()
    {
        var text = _text;
        if (text[_pos] == '0' && _pos + 1 < text.Length && text[_pos + 1] is 'x' or 'X' or 'o' or 'O' or 'b' or 'B')
        {
            _pos += 2;
            while (_pos < text.Length && (char.IsAsciiHexDigit(text[_pos]) || text[_pos] == '_')) _pos++;
            return;
        }
        while (_pos < text.Length && (char.IsAsciiDigit(text[_pos]) || text[_pos] == '_')) _pos++;
        // "1..2" is not a number followed by a dot in SQL we care about; a lone '.' after digits is the fraction.
        if (_pos < text.Length && text[_pos] == '.' && !(_pos + 1 < text.Length && text[_pos + 1] == '.'))
        {
            _pos++;
            while (_pos < text.Length && (char.IsAsciiDigit(text[_pos]) || text[_pos] == '_')) _pos++;
        }
        if (_pos < text.Length && text[_pos] is 'e' or 'E')
        {
            var p = _pos + 1;
            if (p < text.Length && text[p] is '+' or '-') p++;
            if (p < text.Length && char.IsAsciiDigit(text[p]))
            {
                _pos = p;
                while (_pos < text.Length && char.IsAsciiDigit(text[_pos])) _pos++;
            }
        }
    }

    /// <summary>
    /// At a '$': a positional parameter ($1), or a dollar-quoted string ($$...$$, $tag$...$tag$) whose tag
    /// follows identifier rules, so "$1$" is a parameter followed by something else, never a quote.
    /// </summary>
    private SqlTokenKind Dollar(int line, int column)
    {
        var text = _text;
        var start = _pos;
        var p = start + 1;
        if (p < text.Length && char.IsAsciiDigit(text[p]))
        {
            while (p < text.Length && char.IsAsciiDigit(text[p])) p++;
            _pos = p;
            return SqlTokenKind.Parameter;
        }
        if (p < text.Length && IsIdentStart(text[p]))
        {
            p++;
            while (p < text.Length && IsTagPart(text[p])) p++;
        }
        if (p >= text.Length || text[p] != '$')
        {
            // A bare '$' is not valid SQL; let the parser report it where it matters.
            _pos = start + 1;
            return SqlTokenKind.Operator;
        }
        var delimiter = text.AsSpan(start, p - start + 1);
        var bodyStart = p + 1;
        var close = text.AsSpan(bodyStart).IndexOf(delimiter, StringComparison.Ordinal);
        if (close < 0)
            throw new SqlSyntaxException($"unterminated dollar-quoted string {delimiter}", line, column);
        var end = bodyStart + close + delimiter.Length;
        for (var i = bodyStart; i < bodyStart + close; i++)
            if (text[i] == '\n') NewLine(i);
        _pos = end;
        return SqlTokenKind.DollarString;
    }

    private void Operator()
    {
        var text = _text;
        while (_pos < text.Length && IsOperatorChar(text[_pos]))
        {
            // A comment start ends an operator: "a+--x" is a + followed by a comment.
            if (text[_pos] == '-' && _pos + 1 < text.Length && text[_pos + 1] == '-') break;
            if (text[_pos] == '/' && _pos + 1 < text.Length && text[_pos + 1] == '*') break;
            _pos++;
        }
    }

    private static bool IsIdentStart(char c) => char.IsAsciiLetter(c) || c == '_' || (c > 127 && char.IsLetter(c));

    private static bool IsIdentPart(char c) => char.IsAsciiLetterOrDigit(c) || c == '_' || c == '$' || (c > 127 && char.IsLetterOrDigit(c));

    // Tags may not contain '$' (it would end the tag).
    private static bool IsTagPart(char c) => char.IsAsciiLetterOrDigit(c) || c == '_' || (c > 127 && char.IsLetterOrDigit(c));

    private static bool IsOperatorChar(char c) => c is '+' or '-' or '*' or '/' or '<' or '>' or '=' or '~' or '!' or '@' or '#' or '%' or '^' or '&' or '|' or '`' or '?';
}
