namespace Cutover.Platform;

/// <summary>
/// Keeps a flow of async code on thread-pool threads. The agent runs with inline socket completions, so that its
/// proxy forwards each request on the socket (epoll) thread that read it instead of handing it between threads
/// (see <see cref="InlineSocketCompletions"/>). Every other socket continuation in the process then runs on those
/// threads too: orchestration code resuming after a readiness probe, a health check or a Docker call would write
/// state files and start processes on a thread that also serves proxied connections. A flow started through
/// <see cref="Run{T}"/> resumes on the thread pool after every await instead.
/// </summary>
public sealed class ThreadPoolContext : SynchronizationContext
{
    private ThreadPoolContext()
    {
    }

    /// <summary>Starts <paramref name="flow"/> here; each of its continuations runs on the thread pool, under this context again.</summary>
    public static Task<T> Run<T>(Func<Task<T>> flow)
    {
        var previous = Current;
        SetSynchronizationContext(new ThreadPoolContext());
        try
        {
            return flow();
        }
        finally
        {
            SetSynchronizationContext(previous);
        }
    }

    /// <inheritdoc cref="Run{T}"/>
    public static Task Run(Func<Task> flow) => Run(async () =>
    {
        await flow();
        return true;
    });

    public override void Post(SendOrPostCallback callback, object? state) =>
        ThreadPool.UnsafeQueueUserWorkItem(static work => work.Context.Execute(work.Callback, work.State), (Context: this, Callback: callback, State: state), preferLocal: false);

    public override SynchronizationContext CreateCopy() => this;

    private void Execute(SendOrPostCallback callback, object? state)
    {
        var previous = Current;
        SetSynchronizationContext(this);
        try
        {
            callback(state);
        }
        finally
        {
            SetSynchronizationContext(previous);
        }
    }
}

/// <summary>
/// Socket continuations run on the epoll thread that saw the event instead of being queued to the thread pool
/// (DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS). Measured with the proxy benchmark: about a fifth less CPU per
/// proxied request. .NET reads the switch once, when the first socket operation starts, so it must be turned on
/// before any socket is used; code that resumes after socket I/O and may block belongs under <see cref="ThreadPoolContext"/>.
/// </summary>
public static class InlineSocketCompletions
{
    public const string Variable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>How many socket (epoll) threads .NET runs; read, like <see cref="Variable"/>, when the first socket is used.</summary>
    public const string ThreadCountVariable = "DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT";

    /// <summary>
    /// Inline completions, and one socket thread per core unless the operator set a count. With inline completions each
    /// socket thread forwards the requests it reads itself, so the count caps the cores the proxy can use. Measured on
    /// 2 cores (bench/README.md, Proxy overhead and TLS termination, 2026-11-30 14:05Z-14:15Z): one thread answered 0.88x
    /// nginx's plain requests/s with a p99 of 3.35 ms (nginx 1.9 ms; 32 connections queue on one thread), two threads
    /// 1.12x with a p99 of 1.7-2.4 ms; for new TLS connections one thread took a fifth less CPU (each handshake's
    /// accept, handshake and backend reply stay on one thread). Plain keep-alive traffic is the common case, so: all cores.
    /// </summary>
    /// <exception cref="InputException">The operator's count is not a whole number of threads, 1 or more (.NET would
    /// ignore a word, and fail on the first socket with 0).</exception>
    public static void Enable()
    {
        var chosen = Environment.GetEnvironmentVariable(ThreadCountVariable);
        if (!string.IsNullOrEmpty(chosen) && !(uint.TryParse(chosen, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var count) && count >= 1))
            throw new InputException($"{ThreadCountVariable} must be a whole number of socket threads, 1 or more; got '{chosen}'");
        Environment.SetEnvironmentVariable(Variable, "1");
        if (string.IsNullOrEmpty(chosen))
            Environment.SetEnvironmentVariable(ThreadCountVariable, Environment.ProcessorCount.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>The variables <see cref="Enable"/> sets for this process only: the processes it starts must not inherit them.</summary>
    public static readonly IReadOnlyList<string> Variables = [Variable, ThreadCountVariable];
}
