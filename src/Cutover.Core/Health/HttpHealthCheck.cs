using Cutover.Config;

namespace Cutover.Health;

public sealed record HealthResult(bool Healthy, int Attempts, string? LastProblem);

/// <summary>Polls a URL until it answers with the expected status, or gives up after the configured retries.</summary>
public sealed class HttpHealthCheck(HttpClient http)
{
    public async Task<HealthResult> WaitHealthyAsync(HealthConfig config, Action<int, string>? onAttempt, CancellationToken cancellationToken)
    {
        string? problem = null;
        for (var attempt = 1; attempt <= config.Retries; attempt++)
        {
            if (attempt > 1) await Task.Delay(config.Interval, cancellationToken);
            problem = await ProbeAsync(config, cancellationToken);
            if (problem is null) return new HealthResult(true, attempt, null);
            onAttempt?.Invoke(attempt, problem);
        }
        return new HealthResult(false, config.Retries, problem);
    }

    private async Task<string?> ProbeAsync(HealthConfig config, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(config.Timeout);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, config.Url);
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            var status = (int)response.StatusCode;
            return status == config.ExpectStatus ? null : $"{config.Url} answered {status}, expected {config.ExpectStatus}";
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return $"{config.Url} did not answer within {Duration.Format(config.Timeout)}";
        }
        catch (HttpRequestException e)
        {
            return $"{config.Url}: {e.Message}";
        }
    }
}
