using System.Text;
using System.Text.RegularExpressions;

namespace Cutover.Doctor;

/// <summary>One nginx directive: its name, arguments and, for a block, the directives inside.</summary>
public sealed record NginxDirective(string Name, IReadOnlyList<string> Args, IReadOnlyList<NginxDirective>? Block)
{
    public IEnumerable<NginxDirective> Children(string name) => (Block ?? []).Where(d => d.Name == name);
}

/// <summary>
/// The output of `nginx -T` read back as directives, with `include` replaced by the included files (which -T
/// dumps after the main file, each under "# configuration file PATH:"). Enough of nginx's syntax for the directives
/// doctor reads: words, quoted strings, comments, `;` and blocks.
/// </summary>
public static class NginxConfig
{
    private static readonly Regex FileHeader = new(@"^# configuration file (.+):\r?$", RegexOptions.Multiline);

    public static IReadOnlyList<NginxDirective> ParseDump(string dump)
    {
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        var headers = FileHeader.Matches(dump);
        for (var i = 0; i < headers.Count; i++)
        {
            var start = headers[i].Index + headers[i].Length;
            var end = i + 1 < headers.Count ? headers[i + 1].Index : dump.Length;
            files.TryAdd(headers[i].Groups[1].Value, dump[start..end]);
        }
        if (files.Count == 0) return [];
        var main = files.Keys.First();
        return Parse(files[main], files, Path.GetDirectoryName(main) ?? "/", depth: 0);
    }

    private static List<NginxDirective> Parse(string text, IReadOnlyDictionary<string, string> files, string confDir, int depth)
    {
        var tokens = Tokenize(text);
        var position = 0;
        return ParseBlock(tokens, ref position, files, confDir, depth);
    }

    private static List<NginxDirective> ParseBlock(List<string?> tokens, ref int position, IReadOnlyDictionary<string, string> files, string confDir, int depth)
    {
        var directives = new List<NginxDirective>();
        var words = new List<string>();
        while (position < tokens.Count)
        {
            var token = tokens[position++];
            switch (token)
            {
                case ";":
                    if (words.Count > 0)
                    {
                        if (words[0] == "include" && words.Count > 1 && depth < 10)
                            foreach (var file in Included(words[1], files, confDir))
                                directives.AddRange(Parse(files[file], files, confDir, depth + 1));
                        else
                            directives.Add(new NginxDirective(words[0], words.Skip(1).ToList(), null));
                    }
                    words = [];
                    break;
                case "{":
                    var block = ParseBlock(tokens, ref position, files, confDir, depth);
                    directives.Add(new NginxDirective(words.FirstOrDefault() ?? "", words.Skip(1).ToList(), block));
                    words = [];
                    break;
                case "}":
                    return directives;
                default:
                    words.Add(token!);
                    break;
            }
        }
        return directives;
    }

    private static IEnumerable<string> Included(string pattern, IReadOnlyDictionary<string, string> files, string confDir)
    {
        var full = Path.IsPathRooted(pattern) ? pattern : Path.Combine(confDir, pattern);
        var regex = new Regex("^" + Regex.Escape(full).Replace(@"\*", "[^/]*").Replace(@"\?", "[^/]") + "$");
        return files.Keys.Where(f => regex.IsMatch(f)).Order(StringComparer.Ordinal);
    }

    private static List<string?> Tokenize(string text)
    {
        var tokens = new List<string?>();
        var word = new StringBuilder();
        void Flush()
        {
            if (word.Length > 0) tokens.Add(word.ToString());
            word.Clear();
        }
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '#' && word.Length == 0)
            {
                while (i < text.Length && text[i] != '\n') i++;
            }
            else if (c is '"' or '\'' && word.Length == 0)
            {
                var end = i + 1;
                while (end < text.Length && text[end] != c) end += text[end] == '\\' ? 2 : 1;
                tokens.Add(text[(i + 1)..Math.Min(end, text.Length)]);
                i = end;
            }
            else if (c is ';' or '{' or '}')
            {
                Flush();
                tokens.Add(c.ToString());
            }
            else if (char.IsWhiteSpace(c))
            {
                Flush();
            }
            else
            {
                word.Append(c);
            }
        }
        Flush();
        return tokens;
    }
}
