using Cutover.Config;

namespace Cutover.Tests.Notify;

/// <summary>`notify:` as the loader reads it: defaults per strategy, and every mistake at its file:line:key without the URL.</summary>
public class NotifyConfigTests
{
    private const string File = "/srv/app/cutover.yml";
    private const string Secret = "T0/B0/SECRETPART";

    private static IReadOnlyList<ConfigError> Errors(string yaml) => Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, File)).Errors;

    [Fact]
    public void Defaults_to_every_event_the_strategy_can_have_and_prints_the_webhook_as_scheme_and_host_only()
    {
        var symlink = ConfigLoader.Parse($"app: a\nroot: /srv/a\nnotify:\n  webhook: https://hooks.slack.com/services/{Secret}\n", File).Notify!;
        Assert.Equal(["deployed", "failed", "rolled_back"], symlink.On);
        Assert.Equal(TimeSpan.FromSeconds(5), symlink.Timeout);
        Assert.Equal($"https://hooks.slack.com/services/{Secret}", symlink.Webhook.AbsoluteUri);
        Assert.Equal("https://hooks.slack.com/***", symlink.Webhook.ToString());
        Assert.Equal("https://hooks.slack.com/***", $"{symlink.Webhook}"); // interpolation formats a Uri without ToString

        var rolling = ConfigLoader.Parse($"app: a\nstrategy: rolling\nroot: /srv/a\nrun:\n  command: node server.js\nproxy:\n  listen: 127.0.0.1:3000\nnotify:\n  webhook: http://chat:8065/hooks/{Secret}\n  on: [paused, failed]\n  timeout: 2s\n", File).Notify!;
        Assert.Equal(["paused", "failed"], rolling.On);
        Assert.Equal(TimeSpan.FromSeconds(2), rolling.Timeout);
        Assert.Equal("http://chat:8065/***", rolling.Webhook.Shown);
    }

    [Fact]
    public void Bad_urls_unknown_or_impossible_events_and_unknown_keys_are_errors_at_their_line_that_never_quote_the_url()
    {
        var errors = Errors($"""
            app: a
            root: /srv/a
            notify:
              webhook: ftp://hooks.example.com/{Secret}
              on: [deployed, crashed, paused, deployed]
              timeout: 2m
              channel: ops
            """);
        var text = string.Join("\n", errors);
        Assert.DoesNotContain(Secret, text);
        Assert.Contains(errors, e => e.Line == 4 && e.Key == "notify.webhook" && e.Message.Contains("not an http:// or https:// URL"));
        Assert.Contains(errors, e => e.Line == 5 && e.Key == "notify.on" && e.Message.Contains("'crashed' is not an event; events: deployed, failed, rolled_back, paused"));
        Assert.Contains(errors, e => e.Line == 5 && e.Key == "notify.on" && e.Message.Contains("'paused' cannot happen with strategy: symlink"));
        Assert.Contains(errors, e => e.Line == 5 && e.Key == "notify.on" && e.Message.Contains("'deployed' is named twice"));
        Assert.Contains(errors, e => e.Line == 6 && e.Key == "notify.timeout");
        Assert.Contains(errors, e => e.Line == 7 && e.Key == "notify.channel");
        Assert.All(errors, e => Assert.Equal(File, e.File));

        var missing = Assert.Single(Errors("app: a\nroot: /srv/a\nnotify:\n  on: []\n  webhook: not a url\n"), e => e.Key == "notify.webhook");
        Assert.Equal(5, missing.Line);
        Assert.Contains(Errors("app: a\nroot: /srv/a\nnotify:\n  on: []\n  webhook: http://x/\n"), e => e.Key == "notify.on" && e.Message.Contains("names no event"));
        Assert.Contains(Errors("app: a\nstrategy: swarm\nswarm:\n  image: x\nnotify:\n  webhook: http://x/\n  on: [paused]\n"), e => e.Key == "notify.on" && e.Message.Contains("strategy: swarm"));
    }
}
