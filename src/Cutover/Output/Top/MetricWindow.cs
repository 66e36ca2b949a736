namespace Cutover.Cli.Output.Top;

/// <summary>
/// The last <see cref="Span"/> of scrapes, and the arithmetic Prometheus does on them: a counter's increase over the
/// window (a drop between two scrapes is a reset, after which the new value is all the increase, as in rate()), rates
/// from it, and a quantile from histogram buckets' increases, interpolated in the bucket as histogram_quantile does.
/// A series missing from a scrape counts as 0 there: counters start at 0 when they first appear (a new instance, the
/// first 500 of an app), so what they counted since is part of the window.
/// </summary>
public sealed class MetricWindow(TimeSpan span)
{
    private readonly List<Scrape> _scrapes = [];

    private sealed record Scrape(DateTimeOffset At, IReadOnlyDictionary<string, MetricSample> Series);

    public TimeSpan Span { get; } = span;

    /// <summary>How much time the window covers now: from its oldest scrape to its newest (zero with fewer than two).</summary>
    public TimeSpan Covered => _scrapes.Count < 2 ? TimeSpan.Zero : _scrapes[^1].At - _scrapes[0].At;

    public void Add(DateTimeOffset at, IEnumerable<MetricSample> samples)
    {
        var series = new Dictionary<string, MetricSample>(StringComparer.Ordinal);
        // The last of a duplicated series wins (the text format forbids them; a reader has to pick one).
        foreach (var sample in samples) series[sample.Series] = sample;
        _scrapes.Add(new Scrape(at, series));
        // The window never covers more than Span (scrapes come a little over a second apart; "the last 10 s" is no more).
        while (_scrapes.Count > 2 && at - _scrapes[0].At > Span) _scrapes.RemoveAt(0);
    }

    /// <summary>The newest scrape's samples of <paramref name="name"/> that <paramref name="match"/> accepts.</summary>
    public IEnumerable<MetricSample> Latest(string name, Func<MetricSample, bool>? match = null) =>
        _scrapes.Count == 0 ? [] : _scrapes[^1].Series.Values.Where(s => s.Name == name && (match?.Invoke(s) ?? true));

    /// <summary>Whether the newest scrape has any series of <paramref name="name"/> that <paramref name="match"/> accepts.</summary>
    public bool Has(string name, Func<MetricSample, bool>? match = null) => Latest(name, match).Any();

    /// <summary>
    /// Each series' increase over the window, for the series of <paramref name="name"/> that <paramref name="match"/>
    /// accepts in any scrape of it; empty with fewer than two scrapes.
    /// </summary>
    public IReadOnlyList<(MetricSample Series, double Increase)> Increases(string name, Func<MetricSample, bool>? match = null)
    {
        if (_scrapes.Count < 2) return [];
        var keys = _scrapes.SelectMany(s => s.Series.Values).Where(s => s.Name == name && (match?.Invoke(s) ?? true))
            .GroupBy(s => s.Series, StringComparer.Ordinal).Select(g => g.Last());
        return keys.Select(series =>
        {
            var increase = 0.0;
            var previous = _scrapes[0].Series.GetValueOrDefault(series.Series)?.Value ?? 0;
            foreach (var scrape in _scrapes.Skip(1))
            {
                var value = scrape.Series.GetValueOrDefault(series.Series)?.Value ?? 0;
                increase += value >= previous ? value - previous : value;
                previous = value;
            }
            return (series, increase);
        }).ToList();
    }

    /// <summary>The summed increase of the matching series, per second of the window; null before there are two scrapes.</summary>
    public double? Rate(string name, Func<MetricSample, bool>? match = null) =>
        Covered <= TimeSpan.Zero ? null : Increases(name, match).Sum(i => i.Increase) / Covered.TotalSeconds;

    /// <summary>
    /// The <paramref name="quantile"/> of a histogram over the window from its `_bucket` series (summed by `le` across
    /// the matching series); null when nothing was observed in the window or the buckets cannot give one.
    /// </summary>
    public double? Quantile(double quantile, string histogram, Func<MetricSample, bool>? match = null)
    {
        var buckets = new List<(double UpperBound, double Count)>();
        foreach (var group in Increases(histogram + "_bucket", match).GroupBy(i => i.Series.Label("le")))
        {
            if (group.Key is null || !PrometheusTextReader.TryParseValue(group.Key, out var bound) || double.IsNaN(bound)) continue;
            buckets.Add((bound, group.Sum(i => i.Increase)));
        }
        var value = BucketQuantile(quantile, buckets);
        return double.IsNaN(value) ? null : value;
    }

    /// <summary>
    /// Prometheus' bucketQuantile (promql/quantile.go): cumulative bucket counts by upper bound, the last one +Inf; the
    /// rank q*total falls in a bucket and is interpolated linearly inside it. The +Inf bucket answers its lower bound,
    /// the first bucket starts at 0 (or is its own bound when that is not positive). NaN without observations.
    /// </summary>
    public static double BucketQuantile(double quantile, IReadOnlyList<(double UpperBound, double Count)> cumulative)
    {
        if (double.IsNaN(quantile)) return double.NaN;
        if (quantile < 0) return double.NegativeInfinity;
        if (quantile > 1) return double.PositiveInfinity;
        var buckets = cumulative.GroupBy(b => b.UpperBound).Select(g => (UpperBound: g.Key, Count: g.Sum(b => b.Count))).OrderBy(b => b.UpperBound).ToArray();
        if (buckets.Length < 2 || !double.IsPositiveInfinity(buckets[^1].UpperBound)) return double.NaN;
        // Counts read at slightly different moments can dip; a cumulative count never does.
        for (var i = 1; i < buckets.Length; i++)
            if (buckets[i].Count < buckets[i - 1].Count) buckets[i].Count = buckets[i - 1].Count;
        var observations = buckets[^1].Count;
        if (observations <= 0) return double.NaN;
        var rank = quantile * observations;
        var b = Array.FindIndex(buckets, x => x.Count >= rank);
        if (b == buckets.Length - 1) return buckets[^2].UpperBound;
        if (b == 0 && buckets[0].UpperBound <= 0) return buckets[0].UpperBound;
        var (start, end, count) = (0.0, buckets[b].UpperBound, buckets[b].Count);
        if (b > 0)
        {
            start = buckets[b - 1].UpperBound;
            count -= buckets[b - 1].Count;
            rank -= buckets[b - 1].Count;
        }
        return start + (end - start) * (rank / count);
    }
}
