using System.Diagnostics;
using Prometheus;

namespace Cutover.Metrics;

/// <summary>
/// What the proxy records per request for one app. The series are resolved ahead (the histogram and retries at once, a
/// status code's counter the first time that code is seen), so <see cref="Record"/> is a few interlocked adds: no
/// dictionary lookup, no label array, no allocation on the request path.
/// </summary>
public sealed class ProxyRequestMetrics
{
    /// <summary>Kestrel accepts status codes 100..999.</summary>
    private const int MaxStatus = 1000;

    private readonly Counter _requests;
    private readonly string _app;
    private readonly Counter.Child?[] _byStatus = new Counter.Child?[MaxStatus];
    private readonly Histogram.Child _duration;
    private readonly Counter.Child _retries;
    private readonly Counter.Child _crossings;

    internal ProxyRequestMetrics(AgentMetrics metrics, string app)
    {
        _app = app;
        _requests = metrics.Requests;
        _duration = metrics.RequestDuration.WithLabels(app);
        _retries = metrics.Retries.WithLabels(app);
        _crossings = metrics.SocketThreadCrossings.WithLabels(app);
    }

    /// <summary>A response finished with <paramref name="status"/>; <paramref name="startedTimestamp"/> is Stopwatch.GetTimestamp() at its arrival.</summary>
    public void Record(int status, long startedTimestamp)
    {
        _duration.Observe(Stopwatch.GetElapsedTime(startedTimestamp).TotalSeconds);
        var index = (uint)status < MaxStatus ? status : 0;
        (Volatile.Read(ref _byStatus[index]) ?? Resolve(index)).Inc();
    }

    public void Retried() => _retries.Inc();

    /// <summary>A response came back on another socket thread than its client's (Platform/Epoll).</summary>
    public void CrossedSocketThreads() => _crossings.Inc();

    /// <summary>The first request with this code: WithLabels gives every caller the same child, so a race is harmless.</summary>
    private Counter.Child Resolve(int status)
    {
        var child = _requests.WithLabels(_app, status.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Volatile.Write(ref _byStatus[status], child);
        return child;
    }
}
