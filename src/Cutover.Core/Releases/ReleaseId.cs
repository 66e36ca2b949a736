using System.Globalization;
using System.Text.RegularExpressions;

namespace Cutover.Releases;

/// <summary>
/// A release's name: <c>YYYYMMDD_HHMMSS</c> in UTC, with <c>_N</c> appended when that second is taken.
/// Ids compare by time and then by N, so listing order is deploy order.
/// </summary>
public sealed partial record ReleaseId : IComparable<ReleaseId>
{
    [GeneratedRegex(@"^(\d{8}_\d{6})(?:_(\d{1,6}))?$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();

    private ReleaseId(string stamp, int sequence)
    {
        Stamp = stamp;
        Sequence = sequence;
    }

    public string Stamp { get; }
    public int Sequence { get; }
    public string Value => Sequence == 0 ? Stamp : $"{Stamp}_{Sequence}";

    public static bool TryParse(string text, out ReleaseId id)
    {
        id = null!;
        var m = Pattern().Match(text);
        if (!m.Success) return false;
        if (!DateTime.TryParseExact(m.Groups[1].Value, "yyyyMMdd_HHmmss", CultureInfo.InvariantCulture, DateTimeStyles.None, out _))
            return false;
        var sequence = m.Groups[2].Success ? int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture) : 0;
        if (m.Groups[2].Success && sequence < 2) return false;
        id = new ReleaseId(m.Groups[1].Value, sequence);
        return true;
    }

    public static ReleaseId Parse(string text) =>
        TryParse(text, out var id) ? id : throw new FormatException($"'{text}' is not a release id (YYYYMMDD_HHMMSS)");

    /// <summary>
    /// The id for a release started at <paramref name="now"/>: unique among <paramref name="existing"/> and
    /// never sorting before the newest of them, even when the clock went backwards.
    /// </summary>
    public static ReleaseId Next(DateTimeOffset now, IEnumerable<ReleaseId> existing)
    {
        var taken = existing.ToHashSet();
        var newest = taken.Count == 0 ? null : taken.Max();
        var candidate = new ReleaseId(now.UtcDateTime.ToString("yyyyMMdd_HHmmss", CultureInfo.InvariantCulture), 0);
        if (newest is not null && candidate.CompareTo(newest) <= 0)
            candidate = newest;
        while (taken.Contains(candidate))
            candidate = new ReleaseId(candidate.Stamp, candidate.Sequence == 0 ? 2 : candidate.Sequence + 1);
        return candidate;
    }

    public DateTimeOffset Time =>
        new(DateTime.ParseExact(Stamp, "yyyyMMdd_HHmmss", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal), TimeSpan.Zero);

    public int CompareTo(ReleaseId? other)
    {
        if (other is null) return 1;
        var byStamp = string.CompareOrdinal(Stamp, other.Stamp);
        return byStamp != 0 ? byStamp : Sequence.CompareTo(other.Sequence);
    }

    public static bool operator <(ReleaseId a, ReleaseId b) => a.CompareTo(b) < 0;
    public static bool operator >(ReleaseId a, ReleaseId b) => a.CompareTo(b) > 0;
    public static bool operator <=(ReleaseId a, ReleaseId b) => a.CompareTo(b) <= 0;
    public static bool operator >=(ReleaseId a, ReleaseId b) => a.CompareTo(b) >= 0;

    public override string ToString() => Value;
}
