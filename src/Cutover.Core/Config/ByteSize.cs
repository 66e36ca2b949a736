using System.Globalization;
using System.Text.RegularExpressions;

namespace Cutover.Config;

/// <summary>Sizes as users write them: <c>512K</c>, <c>500M</c>, <c>2G</c> (binary units), or a plain byte count.</summary>
public static partial class ByteSize
{
    [GeneratedRegex(@"^(\d+(?:\.\d+)?)\s*([KMG]?)B?$", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex Pattern();

    public static bool TryParse(string text, out long bytes, out string? error)
    {
        bytes = 0;
        error = null;
        var m = Pattern().Match(text.Trim());
        if (!m.Success)
        {
            error = $"'{text}' is not a size; use a number with K, M or G (for example 512K, 500M, 2G)";
            return false;
        }
        var n = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        var factor = m.Groups[2].Value.ToUpperInvariant() switch
        {
            "K" => 1L << 10,
            "M" => 1L << 20,
            "G" => 1L << 30,
            _ => 1L,
        };
        bytes = (long)(n * factor);
        return true;
    }
}
