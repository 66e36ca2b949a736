using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Cutover.Config;
using Cutover.Deploy;

namespace Cutover.Notify;

/// <summary>
/// The JSON document a webhook gets for one event. <see cref="Text"/> is what Slack and Mattermost incoming webhooks
/// show as the message; the other fields are for receivers that read them. Field names (snake_case) are public: README,
/// "Notifications".
/// </summary>
public sealed record NotifyPayload(
    string Event,
    string App,
    string? Release,
    string? Revision,
    string Who,
    string Outcome,
    string? Reason,
    double? Duration,
    string Host,
    string Text)
{
    /// <summary>The event a deploy's outcome is: deployed, failed (a cancelled deploy too), rolled_back (switched back by itself), paused.</summary>
    public static string EventOf(DeployOutcome outcome) => outcome switch
    {
        DeployOutcome.Success => "deployed",
        DeployOutcome.RolledBack => "rolled_back",
        DeployOutcome.Paused => NotifyConfig.Paused,
        _ => "failed",
    };

    public static NotifyPayload ForDeploy(string app, DeployOutcome outcome, string? release, string? revision, string who, string? reason, double seconds, string? where = null)
    {
        var @event = EventOf(outcome);
        var rev = revision is null ? "" : $" ({Short(revision)})";
        var on = where is null ? "" : $" {where}";
        var took = Seconds(seconds);
        var text = outcome switch
        {
            DeployOutcome.Success => $":white_check_mark: {app}: {who} deployed release {release}{rev}{on} in {took}",
            DeployOutcome.RolledBack => $":leftwards_arrow_with_hook: {app}: release {release}{rev} by {who} was rolled back{on} after {took}: {reason}",
            DeployOutcome.Paused => $":double_vertical_bar: {app}: the deploy of release {release}{rev} by {who} paused{on} after {took}: {reason}",
            DeployOutcome.Cancelled => $":x: {app}: the deploy of release {release}{rev} by {who} was cancelled{on} after {took}: {reason}",
            _ => $":x: {app}: the deploy of release {release ?? "(none)"}{rev} by {who} failed{on} after {took}: {reason}",
        };
        return new NotifyPayload(@event, app, release, revision, who, outcome.Word(), reason, Math.Round(seconds, 3), Environment.MachineName, text);
    }

    public static NotifyPayload ForRollback(string app, string from, string to, string? revision, string who, string? reason, double seconds, string? where = null)
    {
        var on = where is null ? "" : $" {where}";
        var text = $":leftwards_arrow_with_hook: {app}: {who} rolled back from {from} to {to}{(revision is null ? "" : $" ({Short(revision)})")}{on} in {Seconds(seconds)}" +
                   (reason is null ? "" : $", but {reason}");
        return new NotifyPayload("rolled_back", app, to, revision, who, reason is null ? "success" : "hook_failed", reason, Math.Round(seconds, 3), Environment.MachineName, text);
    }

    public static NotifyPayload ForPause(string app, string who, DateTimeOffset until) =>
        new(NotifyConfig.Paused, app, null, null, who, "paused", null, null, Environment.MachineName,
            $":double_vertical_bar: {app}: {who} paused it (requests are held until `cutover resume`, at most until {until.UtcDateTime:HH:mm:ss}Z)");

    private static string Short(string revision) => revision.Length > 12 ? revision[..12] : revision;

    private static string Seconds(double seconds) => string.Create(CultureInfo.InvariantCulture, $"{seconds:0.0}s");
}

/// <summary>
/// Posts one <see cref="NotifyPayload"/> to the configured webhook when its event is one the config names. Every try
/// together gets the config's timeout; up to three tries, again only after a 429, a 5xx or a network error. It never
/// throws for the webhook's sake: the answer is null when it was delivered (or not asked for), else a one-line
/// warning that shows the URL as scheme and host only.
/// </summary>
public sealed class WebhookNotifier(NotifyConfig config, HttpMessageHandler? handler = null)
{
    private const int MaxTries = 3;

    // The payload's compile-time contract (the Native AOT `cutover rollback` notifies too), in Cutover's JSON dialect.
    private static readonly JsonSerializerOptions PayloadJson = Json.With(NotifyJsonContracts.Default, indented: false);

    public async Task<string?> SendAsync(NotifyPayload payload, CancellationToken cancellationToken)
    {
        if (!config.On.Contains(payload.Event)) return null;
        var body = Json.Write(payload, PayloadJson);
        using var budget = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        budget.CancelAfter(config.Timeout);
        // The budget is the only timeout: HttpClient's own 100 s would be longer.
        using var http = handler is null ? new HttpClient { Timeout = Timeout.InfiniteTimeSpan } : new HttpClient(handler, disposeHandler: false) { Timeout = Timeout.InfiniteTimeSpan };
        string problem = "";
        for (var attempt = 1; attempt <= MaxTries; attempt++)
        {
            TimeSpan wait;
            try
            {
                using var content = new StringContent(body, Encoding.UTF8, "application/json");
                using var response = await http.PostAsync(config.Webhook, content, budget.Token);
                if (response.IsSuccessStatusCode) return null;
                problem = $"it answered {(int)response.StatusCode} {response.ReasonPhrase}";
                if (response.StatusCode != HttpStatusCode.TooManyRequests && (int)response.StatusCode < 500) break;
                wait = RetryAfter(response.Headers.RetryAfter) is { } after && after > TimeSpan.Zero ? after : TimeSpan.FromMilliseconds(250 * attempt);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                problem = $"no answer within {Duration.Format(config.Timeout)}";
                break;
            }
            catch (HttpRequestException e)
            {
                problem = config.Webhook.Hide(e.Message);
                wait = TimeSpan.FromMilliseconds(250 * attempt);
            }
            if (attempt == MaxTries) break;
            try
            {
                await Task.Delay(wait, budget.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                problem += $", and no time was left for another try within {Duration.Format(config.Timeout)}";
                break;
            }
        }
        return $"notify: the {payload.Event} notification to {config.Webhook.Shown} was not delivered ({problem}); what it reports stands";
    }

    /// <summary>
    /// Sends <paramref name="payload"/> when <paramref name="config"/> asks for it, and hands a failure to
    /// <paramref name="warn"/>. Not cancellable from outside: a cancelled deploy's own notification still goes, and the
    /// timeout bounds it.
    /// </summary>
    public static async Task NotifyAsync(NotifyConfig? config, NotifyPayload payload, Action<string> warn)
    {
        if (config is null) return;
        if (await new WebhookNotifier(config).SendAsync(payload, CancellationToken.None) is { } warning) warn(warning);
    }

    private static TimeSpan? RetryAfter(RetryConditionHeaderValue? header) =>
        header?.Delta ?? (header?.Date is { } date ? date - DateTimeOffset.UtcNow : null);
}

[System.Text.Json.Serialization.JsonSerializable(typeof(NotifyPayload))]
internal sealed partial class NotifyJsonContracts : System.Text.Json.Serialization.JsonSerializerContext;
