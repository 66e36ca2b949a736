namespace Cutover.Migrations.Sql;

/// <summary>Splits a migration file into statements, on semicolons the lexer says are real.</summary>
public static class SqlScript
{
    private static readonly IReadOnlyList<SqlComment> NoComments = [];

    /// <exception cref="SqlSyntaxException">an unterminated string, quoted identifier, comment or dollar body.</exception>
    public static IReadOnlyList<SqlStatement> Split(string text)
    {
        var lexer = new SqlLexer(text);
        // Statement tokens without comments, in one array for the whole file; statements hold segments of it.
        // When it grows, earlier statements keep their segments of the old array, which stay valid.
        var code = new SqlToken[text.Length / 6 + 16];
        var codeCount = 0;
        var statements = new List<SqlStatement>();
        List<SqlComment>? pending = null;
        var first = -1;
        var atomicDepth = 0;
        while (lexer.TryNext(out var token))
        {
            if (token.IsComment)
            {
                if (first < 0)
                {
                    pending ??= [];
                    pending.Add(new SqlComment(token.Text(text), token.Offset, token.Line, token.Column, token.Line + CountNewlines(text, token)));
                }
                continue;
            }
            if (token.Kind == SqlTokenKind.Semicolon && atomicDepth == 0)
            {
                if (first >= 0) statements.Add(Make(text, code, first, codeCount, pending));
                first = -1;
                pending = null;
                continue;
            }
            if (first < 0) first = codeCount;
            if (codeCount == code.Length) Array.Resize(ref code, code.Length * 2);
            code[codeCount++] = token;
            atomicDepth = TrackAtomicBody(text, code, first, codeCount, atomicDepth);
        }
        if (first >= 0) statements.Add(Make(text, code, first, codeCount, pending));
        return statements;
    }

    /// <summary>
    /// SQL-standard function bodies (<c>BEGIN ATOMIC ... END</c>) contain semicolons that do not end the
    /// CREATE FUNCTION; like psql, count BEGIN/CASE against END inside them.
    /// </summary>
    private static int TrackAtomicBody(string text, SqlToken[] code, int first, int count, int depth)
    {
        var token = code[count - 1];
        if (token.Kind != SqlTokenKind.Word) return depth;
        if (depth == 0)
        {
            if (token.Is(text, "ATOMIC") && count - 2 >= first && code[count - 2].Is(text, "BEGIN")
                && code[first].Is(text, "CREATE")) return 1;
            return 0;
        }
        if (token.Is(text, "BEGIN") || token.Is(text, "CASE")) return depth + 1;
        if (token.Is(text, "END")) return depth - 1;
        return depth;
    }

    private static SqlStatement Make(string text, SqlToken[] code, int first, int end, List<SqlComment>? comments)
    {
        var head = code[first];
        var last = code[end - 1];
        var tokens = new ArraySegment<SqlToken>(code, first, end - first);
        return new SqlStatement(
            text.Substring(head.Offset, last.End - head.Offset),
            head.Offset,
            head.Line,
            head.Column,
            tokens,
            (IReadOnlyList<SqlComment>?)comments ?? NoComments,
            IsTransactionControl(text, tokens),
            CannotRunInTransaction(text, tokens));
    }

    private static int CountNewlines(string text, SqlToken token) => text.AsSpan(token.Offset, token.Length).Count('\n');

    private static bool IsTransactionControl(string text, ArraySegment<SqlToken> t)
    {
        var head = t[0];
        if (head.Is(text, "BEGIN") || head.Is(text, "COMMIT") || head.Is(text, "END") || head.Is(text, "ABORT"))
            // COMMIT PREPARED finishes a two-phase transaction, not the session's.
            return !(t.Count > 1 && t[1].Is(text, "PREPARED"));
        if (head.Is(text, "START")) return t.Count > 1 && t[1].Is(text, "TRANSACTION");
        if (head.Is(text, "ROLLBACK"))
            // ROLLBACK [WORK|TRANSACTION] TO [SAVEPOINT] s leaves the transaction open.
        {
            foreach (var x in t)
                if (x.Is(text, "TO") || x.Is(text, "PREPARED")) return false;
            return true;
        }
        return false;
    }

    private static bool CannotRunInTransaction(string text, ArraySegment<SqlToken> t)
    {
        var head = t[0];
        // Static helpers, not closures: this runs for every statement of every file.
        static bool At(string text, ArraySegment<SqlToken> t, int i, string word) => i < t.Count && t[i].Is(text, word);
        static bool Contains(string text, ArraySegment<SqlToken> t, string word)
        {
            foreach (var x in t) if (x.Is(text, word)) return true;
            return false;
        }
        if (head.Kind != SqlTokenKind.Word) return false;
        if (head.Is(text, "VACUUM")) return true;
        if (head.Is(text, "REINDEX")) return Contains(text, t, "CONCURRENTLY");
        if (head.Is(text, "CREATE"))
        {
            if (At(text, t, 1, "DATABASE") || At(text, t, 1, "TABLESPACE")) return true;
            var i = At(text, t, 1, "UNIQUE") ? 2 : 1;
            return At(text, t, i, "INDEX") && At(text, t, i + 1, "CONCURRENTLY");
        }
        if (head.Is(text, "DROP"))
            return At(text, t, 1, "DATABASE") || At(text, t, 1, "TABLESPACE") || (At(text, t, 1, "INDEX") && At(text, t, 2, "CONCURRENTLY"));
        if (head.Is(text, "ALTER"))
        {
            if (At(text, t, 1, "SYSTEM")) return true;
            if (At(text, t, 1, "TABLE"))
                for (var i = 2; i + 1 < t.Count; i++)
                    if (t[i].Is(text, "DETACH") && t[i + 1].Is(text, "PARTITION"))
                        return Contains(text, t, "CONCURRENTLY");
        }
        return false;
    }
}
