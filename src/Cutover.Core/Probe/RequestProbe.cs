using System.Diagnostics;

namespace Cutover.Probe;

public sealed record AnswerReport(long Requests, long Failed, IReadOnlyDictionary<string, long> ByAnswer, TimeSpan Elapsed, string? FirstFailure)
{
    public double RequestsPerSecond => Elapsed.TotalSeconds > 0 ? Requests / Elapsed.TotalSeconds : 0;
}

/// <summary>
/// Keeps a few keep-alive connections busy with back-to-back GETs and counts every answer: the proof that a
/// deploy failed zero requests. Answers are grouped by their first line, so a switch shows as two groups.
/// Bounded: it stops by itself after <c>maxDuration</c>.
/// </summary>
public sealed class RequestProbe : IAsyncDisposable
{
    private readonly HttpClient _client;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task[] _workers;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Dictionary<string, long> _answers = new();
    private long _requests;
    private long _failed;
    private string? _firstFailure;

    public RequestProbe(Uri url, int connections, TimeSpan maxDuration)
    {
        _client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = connections, UseProxy = false }) { Timeout = TimeSpan.FromSeconds(10) };
        _stop.CancelAfter(maxDuration);
        _workers = Enumerable.Range(0, connections).Select(_ => Task.Run(() => LoopAsync(url))).ToArray();
    }

    private async Task LoopAsync(Uri url)
    {
        while (!_stop.IsCancellationRequested)
        {
            string answer;
            var ok = false;
            try
            {
                using var response = await _client.GetAsync(url, CancellationToken.None);
                var body = await response.Content.ReadAsStringAsync();
                ok = response.IsSuccessStatusCode;
                answer = ok ? FirstWords(body) : $"HTTP {(int)response.StatusCode}";
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
            {
                answer = e.Message;
            }
            Interlocked.Increment(ref _requests);
            lock (_answers)
            {
                _answers[answer] = _answers.GetValueOrDefault(answer) + 1;
                if (!ok)
                {
                    _failed++;
                    _firstFailure ??= answer;
                }
            }
        }
    }

    private static string FirstWords(string body)
    {
        var line = body.Split('\n')[0];
        var paren = line.IndexOf(" (", StringComparison.Ordinal);
        return paren > 0 ? line[..paren] : line;
    }

    public async Task<AnswerReport> StopAsync()
    {
        _stop.Cancel();
        await Task.WhenAll(_workers);
        lock (_answers)
            return new AnswerReport(Interlocked.Read(ref _requests), _failed, new Dictionary<string, long>(_answers), _clock.Elapsed, _firstFailure);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested) await StopAsync();
        _client.Dispose();
    }
}
