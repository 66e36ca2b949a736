namespace Cutover.Config;

/// <summary>
/// `notify:`: one JSON POST to <see cref="Webhook"/> per event in <see cref="On"/>, each given at most
/// <see cref="Timeout"/> (all its tries together), so a slow or dead webhook never holds a deploy up for longer.
/// </summary>
public sealed record NotifyConfig
{
    /// <summary>The events a config may name, as it names them.</summary>
    public static readonly IReadOnlyList<string> Events = ["deployed", "failed", "rolled_back", "paused"];

    public const string Paused = "paused";

    public required WebhookUrl Webhook { get; init; }
    public required IReadOnlyList<string> On { get; init; }
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The events that can happen under <paramref name="strategy"/>: paused needs the agent (`cutover pause`,
    /// failure_action: pause), so symlink and swarm have the other three.
    /// </summary>
    public static IReadOnlyList<string> PossibleFor(Strategy strategy) => strategy.RunsInstances ? Events : Events.Where(e => e != Paused).ToList();
}

/// <summary>
/// A webhook URL, which is a secret (a Slack or Mattermost incoming webhook's path is its key): it prints as its
/// scheme and host only, wherever it is printed (`cutover config`, a warning, an error), and is sent whole.
/// </summary>
public sealed class WebhookUrl(string url) : Uri(url), ISpanFormattable
{
    /// <summary>Scheme and host (and a port that is not the default): what may be shown.</summary>
    public string Shown => $"{Scheme}://{Host}{(IsDefaultPort ? "" : $":{Port}")}/***";

    public override string ToString() => Shown;

    // Re-implemented: string interpolation formats a Uri through ISpanFormattable, which would write the whole URL.
    string IFormattable.ToString(string? format, IFormatProvider? formatProvider) => Shown;

    bool ISpanFormattable.TryFormat(Span<char> destination, out int charsWritten, ReadOnlySpan<char> format, IFormatProvider? provider)
    {
        charsWritten = 0;
        if (!Shown.AsSpan().TryCopyTo(destination)) return false;
        charsWritten = Shown.Length;
        return true;
    }

    /// <summary><paramref name="text"/> with the URL (as written, or as .NET spells it) replaced by its shown form.</summary>
    public string Hide(string text) => text.Replace(OriginalString, Shown, StringComparison.Ordinal).Replace(AbsoluteUri, Shown, StringComparison.Ordinal);
}

/// <summary>Reads `notify:` with file:line:key errors, never echoing the URL.</summary>
public static class NotifyConfigReader
{
    public static NotifyConfig? Read(YamlSection? section, Strategy strategy)
    {
        if (section is null) return null;
        var text = section.RequiredString("webhook");
        WebhookUrl? url = null;
        if (text.Length > 0)
        {
            // The value is not quoted back: it is a secret.
            if (!Uri.TryCreate(text, UriKind.Absolute, out var parsed) || parsed.Scheme is not ("http" or "https") || parsed.Host.Length == 0)
                section.Error("webhook", "is not an http:// or https:// URL (the value is not shown: a webhook URL is a secret)");
            else url = new WebhookUrl(text);
        }
        var possible = NotifyConfig.PossibleFor(strategy);
        IReadOnlyList<string> on = possible;
        if (section.Has("on"))
        {
            var named = new List<string>();
            var nodes = section.StringList("on");
            if (nodes.Count == 0) section.Error("on", $"names no event; give some of {string.Join(", ", possible)}, or leave `on` out for all of them");
            foreach (var node in nodes)
            {
                var name = node.Value ?? "";
                if (!NotifyConfig.Events.Contains(name))
                    section.Error(node, "on", $"'{name}' is not an event; events: {string.Join(", ", NotifyConfig.Events)}");
                else if (!possible.Contains(name))
                    section.Error(node, "on", $"'{name}' cannot happen with strategy: {strategy.Name} (`cutover pause` and failure_action: pause are rolling and blue-green's)");
                else if (named.Contains(name))
                    section.Error(node, "on", $"'{name}' is named twice");
                else named.Add(name);
            }
            on = named;
        }
        var timeout = section.Duration("timeout", TimeSpan.FromSeconds(5), min: TimeSpan.FromMilliseconds(100));
        if (timeout > TimeSpan.FromSeconds(60))
            section.Error("timeout", $"{Duration.Format(timeout)} is longer than a minute; a notification may hold the end of a deploy up for that long");
        section.RejectUnknownKeys();
        return url is null ? null : new NotifyConfig { Webhook = url, On = on, Timeout = timeout };
    }
}
