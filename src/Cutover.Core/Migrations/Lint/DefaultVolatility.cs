using Cutover.Migrations.Sql;

namespace Cutover.Migrations.Lint;

/// <summary>
/// Whether a column DEFAULT can be stored once in the catalog (PostgreSQL 11+: no rewrite) or must be evaluated
/// per row (a rewrite under ACCESS EXCLUSIVE). Without a connection we cannot read pg_proc.provolatile, so,
/// like strong_migrations, a function we do not know is treated as volatile.
/// </summary>
internal static class DefaultVolatility
{
    /// <summary>Built-ins that are STABLE or IMMUTABLE (evaluated once for ADD COLUMN), lower case.</summary>
    private static readonly HashSet<string> NonVolatile = new(StringComparer.OrdinalIgnoreCase)
    {
        "now", "current_timestamp", "current_date", "current_time", "localtimestamp", "localtime", "transaction_timestamp",
        "statement_timestamp", "current_user", "session_user", "current_role", "current_schema", "current_database",
        "current_setting", "cast", "coalesce", "nullif", "greatest", "least", "array", "row", "lower", "upper", "trim",
        "length", "concat", "concat_ws", "replace", "substring", "substr", "left", "right", "abs", "round", "floor", "ceil",
        "date_trunc", "date_part", "extract", "timezone", "to_char", "to_date", "to_timestamp", "to_number", "make_date",
        "make_time", "make_timestamp", "make_timestamptz", "make_interval", "jsonb_build_object", "jsonb_build_array",
        "json_build_object", "json_build_array", "to_json", "to_jsonb", "array_fill", "array_length", "format", "md5",
        "int4range", "int8range", "numrange", "tsrange", "tstzrange", "daterange", "point", "inet", "cidr",
    };

    /// <summary>The first call in <paramref name="expression"/> that may be volatile (e.g. "gen_random_uuid()"), or null.</summary>
    public static string? VolatileCall(SqlStatement s, IReadOnlyList<SqlToken> expression)
    {
        for (var i = 0; i < expression.Count; i++)
        {
            var t = expression[i];
            if (t.Kind == SqlTokenKind.Cast || (t.Kind == SqlTokenKind.Word && s.TokenSpan(t).Equals("AS", StringComparison.OrdinalIgnoreCase)))
            {
                // ::type, ::schema.type, ::varchar(20), CAST(x AS numeric(10,2)) - a type name, not a call.
                while (i + 1 < expression.Count && expression[i + 1].Kind is SqlTokenKind.Word or SqlTokenKind.QuotedIdentifier or SqlTokenKind.Dot)
                    i++;
                if (i + 1 < expression.Count && expression[i + 1].Kind == SqlTokenKind.OpenParen) i = SkipGroup(expression, i + 1);
                continue;
            }
            if (t.Kind is not (SqlTokenKind.Word or SqlTokenKind.QuotedIdentifier)) continue;
            if (i + 1 >= expression.Count || expression[i + 1].Kind != SqlTokenKind.OpenParen) continue;
            if (i > 0 && expression[i - 1].Kind == SqlTokenKind.Dot)
            {
                // schema.function(): only pg_catalog's are known.
                if (!(i > 1 && s.TokenSpan(expression[i - 2]).Equals("pg_catalog", StringComparison.OrdinalIgnoreCase)))
                    return s.TokenText(expression[i - 2]) + "." + s.TokenText(t) + "()";
            }
            var name = s.TokenText(t);
            if (t.Kind == SqlTokenKind.QuotedIdentifier || !NonVolatile.Contains(name)) return name + "()";
        }
        return null;
    }

    private static int SkipGroup(IReadOnlyList<SqlToken> tokens, int open)
    {
        var depth = 0;
        for (var i = open; i < tokens.Count; i++)
        {
            if (tokens[i].Kind == SqlTokenKind.OpenParen) depth++;
            else if (tokens[i].Kind == SqlTokenKind.CloseParen && --depth == 0) return i;
        }
        return tokens.Count - 1;
    }
}
