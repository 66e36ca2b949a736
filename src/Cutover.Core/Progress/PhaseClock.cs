using System.Diagnostics;

namespace Cutover.Progress;

/// <summary>Runs named phases, reports them, and keeps their durations for the history log.</summary>
public sealed class PhaseClock(IDeployProgress progress)
{
    private readonly Dictionary<string, double> _seconds = new();

    public IReadOnlyDictionary<string, double> Seconds => _seconds;

    public async Task<T> RunAsync<T>(string phase, Func<Task<T>> work, Func<T, string?>? describe = null)
    {
        progress.PhaseStarted(phase);
        var clock = Stopwatch.StartNew();
        try
        {
            var result = await work();
            Record(phase, clock.Elapsed);
            progress.PhaseCompleted(phase, clock.Elapsed, describe?.Invoke(result));
            return result;
        }
        catch (Exception e)
        {
            Record(phase, clock.Elapsed);
            progress.PhaseFailed(phase, clock.Elapsed, e.Message);
            throw;
        }
    }

    /// <summary>For work that reports failure by returning a reason rather than throwing: shown as a failed phase.</summary>
    public Task<string?> RunCheckedAsync(string phase, Func<Task<string?>> work, string success) => RunCheckedAsync(phase, work, () => success);

    public async Task<string?> RunCheckedAsync(string phase, Func<Task<string?>> work, Func<string> success)
    {
        progress.PhaseStarted(phase);
        var clock = Stopwatch.StartNew();
        string? failure;
        try
        {
            failure = await work();
        }
        catch (Exception e) when (e is DeployException or HttpRequestException or IOException)
        {
            failure = e.Message;
        }
        Record(phase, clock.Elapsed);
        if (failure is null) progress.PhaseCompleted(phase, clock.Elapsed, success());
        else progress.PhaseFailed(phase, clock.Elapsed, failure);
        return failure;
    }

    public Task RunAsync(string phase, Func<Task> work, string? detail = null) =>
        RunAsync(phase, async () => { await work(); return detail; }, d => d);

    public T Run<T>(string phase, Func<T> work, Func<T, string?>? describe = null) =>
        RunAsync(phase, () => Task.FromResult(work()), describe).GetAwaiter().GetResult();

    public void Run(string phase, Action work, string? detail = null) =>
        Run<string?>(phase, () => { work(); return detail; }, d => d);

    private void Record(string phase, TimeSpan elapsed) =>
        _seconds[phase] = Math.Round(_seconds.GetValueOrDefault(phase) + elapsed.TotalSeconds, 4);
}
