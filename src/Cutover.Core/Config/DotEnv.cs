namespace Cutover.Config;

/// <summary>
/// An env_file, read with the dotenv rules people expect from compose and Kamal: KEY=VALUE per line, blank lines and
/// `#` comments skipped, an optional `export ` prefix, values single-quoted (literal), double-quoted (\n, \t, \", \\
/// escapes) or bare (trailing ` #comment` removed, surrounding blanks trimmed). Values are not interpolated: a `$` in
/// an env_file is the character itself, so a password containing one never needs escaping.
/// </summary>
public static class DotEnv
{
    public sealed record Entry(string Name, string Value, int Line);

    /// <summary>The file's entries in order; every mistake is an error naming file:line, and all of them are reported.</summary>
    public static IReadOnlyList<Entry> Parse(string text, string file, List<ConfigError> errors)
    {
        var entries = new List<Entry>();
        var lines = text.Replace("\r\n", "\n").Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var lineNumber = i + 1;
            var line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            if (line.StartsWith("export ", StringComparison.Ordinal)) line = line["export ".Length..].TrimStart();
            var equals = line.IndexOf('=');
            if (equals <= 0)
            {
                // The line itself is not repeated: it may be half a secret.
                errors.Add(new ConfigError(file, lineNumber, 1, "env_file", "not NAME=value (a line of an env file is KEY=VALUE, # comment or blank)"));
                continue;
            }
            var name = line[..equals].TrimEnd();
            if (!EnvInterpolation.IsName(name))
            {
                errors.Add(new ConfigError(file, lineNumber, 1, "env_file", $"'{name}' is not an environment variable name (letters, digits and _, not starting with a digit)"));
                continue;
            }
            var raw = line[(equals + 1)..].TrimStart();
            var value = ParseValue(raw, out var error);
            if (error is not null)
            {
                errors.Add(new ConfigError(file, lineNumber, equals + 2, "env_file", $"{name}: {error}"));
                continue;
            }
            entries.Add(new Entry(name, value!, lineNumber));
        }
        return entries;
    }

    private static string? ParseValue(string raw, out string? error)
    {
        error = null;
        if (raw.Length == 0) return "";
        var quote = raw[0];
        if (quote is '\'' or '"')
        {
            var end = FindClosingQuote(raw, quote);
            if (end < 0)
            {
                error = $"the value opens a {(quote == '"' ? "double" : "single")} quote that this line does not close";
                return null;
            }
            var rest = raw[(end + 1)..].Trim();
            if (rest.Length > 0 && !rest.StartsWith('#'))
            {
                error = "text after the closing quote (only a # comment may follow)";
                return null;
            }
            var inner = raw[1..end];
            return quote == '\'' ? inner : Unescape(inner);
        }
        // Bare: a comment begins at ` #`, so a value such as pa#ss stays whole.
        var comment = raw.IndexOf(" #", StringComparison.Ordinal);
        return (comment >= 0 ? raw[..comment] : raw).Trim();
    }

    private static int FindClosingQuote(string raw, char quote)
    {
        for (var i = 1; i < raw.Length; i++)
        {
            if (quote == '"' && raw[i] == '\\') { i++; continue; }
            if (raw[i] == quote) return i;
        }
        return -1;
    }

    private static string Unescape(string inner)
    {
        var builder = new System.Text.StringBuilder(inner.Length);
        for (var i = 0; i < inner.Length; i++)
        {
            if (inner[i] != '\\' || i + 1 == inner.Length) { builder.Append(inner[i]); continue; }
            var next = inner[++i];
            builder.Append(next switch { 'n' => '\n', 't' => '\t', 'r' => '\r', _ => next });
        }
        return builder.ToString();
    }
}
