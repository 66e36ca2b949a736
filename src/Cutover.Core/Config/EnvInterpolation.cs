namespace Cutover.Config;

/// <summary>
/// `${NAME}` in a value of `env:`, as compose writes it: `${NAME}` (missing: an error), `${NAME:-default}` (missing or
/// empty: the default), `${NAME-default}` (missing: the default), and `$$` for one literal `$`. Any other `$` is refused
/// rather than guessed at, so a value never silently loses part of a password. Only `env:` values are interpolated: they
/// are the only place a deploy-time value belongs, and elsewhere a `$` keeps meaning itself.
/// </summary>
public static class EnvInterpolation
{
    /// <summary>The value with its references filled in, or an error naming the first problem; <paramref name="used"/> gets each value substituted.</summary>
    public static string? Resolve(string text, Func<string, string?> lookup, List<string> used, out string? error)
    {
        error = null;
        var builder = new System.Text.StringBuilder(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] != '$') { builder.Append(text[i]); continue; }
            if (i + 1 < text.Length && text[i + 1] == '$') { builder.Append('$'); i++; continue; }
            if (i + 1 >= text.Length || text[i + 1] != '{')
            {
                error = "a '$' must start ${NAME} (or be written $$ for a literal $)";
                return null;
            }
            var close = text.IndexOf('}', i + 2);
            if (close < 0)
            {
                error = "'${' is not closed by '}'";
                return null;
            }
            var reference = text[(i + 2)..close];
            string name;
            string? fallback = null;
            var emptyCountsAsMissing = false;
            var colonDash = reference.IndexOf(":-", StringComparison.Ordinal);
            var dash = reference.IndexOf('-');
            if (colonDash > 0 && (dash < 0 || colonDash < dash)) { name = reference[..colonDash]; fallback = reference[(colonDash + 2)..]; emptyCountsAsMissing = true; }
            else if (dash > 0) { name = reference[..dash]; fallback = reference[(dash + 1)..]; }
            else name = reference;
            if (!IsName(name))
            {
                error = $"'${{{reference}}}' does not name a variable (letters, digits and _, not starting with a digit; ${{NAME:-default}} for a default)";
                return null;
            }
            var value = lookup(name);
            if (value is null || (emptyCountsAsMissing && value.Length == 0))
            {
                if (fallback is null)
                {
                    error = $"${{{name}}} is not set where cutover deploy runs (export it, put it in env_file, or write ${{{name}:-default}})";
                    return null;
                }
                // A default is written in the config, so it is no secret.
                builder.Append(fallback);
            }
            else
            {
                used.Add(value);
                builder.Append(value);
            }
            i = close;
        }
        return builder.ToString();
    }

    public static bool IsName(string name) =>
        name.Length > 0 && !char.IsAsciiDigit(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');
}
