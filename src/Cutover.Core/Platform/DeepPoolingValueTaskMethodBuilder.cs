using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;

namespace Cutover.Platform;

/// <summary>
/// An async method builder for <see cref="ValueTask{TResult}"/> methods, like .NET's PoolingAsyncValueTaskMethodBuilder
/// but with a deeper cache of state-machine boxes: up to <see cref="CacheSize"/> per method and thread, where the
/// framework keeps one per thread (and one per core). Why: one epoll wake-up of the proxy starts a batch of requests
/// (many connections) before any of them finishes; with the framework's caches most requests allocated their boxes
/// (three per request, ~500 B, measured with dotnet-trace under wrk, 19:13Z).
/// Like the framework's builders, the ExecutionContext flows across awaits. Unlike them, Start does not shield the caller
/// from AsyncLocal values the method sets before its first await (that needs the runtime's internals): use it only on
/// methods that set none.
/// </summary>
public struct DeepPoolingValueTaskMethodBuilder<TResult>
{
    /// <summary>Boxes kept per method: more than the requests in flight at once on a busy proxy need.</summary>
    public const int CacheSize = 256;

    /// <summary>Null until the method first awaits something not yet complete.</summary>
    private Box? _box;
    private TResult? _result;
    private Exception? _exception;

    public static DeepPoolingValueTaskMethodBuilder<TResult> Create() => default;

    public readonly ValueTask<TResult> Task =>
        _box is not null ? new ValueTask<TResult>(_box, _box.Version)
        : _exception is not null ? ValueTask.FromException<TResult>(_exception)
        : new ValueTask<TResult>(_result!);

    public void Start<TStateMachine>(ref TStateMachine stateMachine) where TStateMachine : IAsyncStateMachine => stateMachine.MoveNext();

    public void SetStateMachine(IAsyncStateMachine stateMachine)
    {
    }

    public void SetResult(TResult result)
    {
        if (_box is null) _result = result;
        else _box.SetResult(result);
    }

    public void SetException(Exception exception)
    {
        if (_box is null) _exception = exception;
        else _box.SetException(exception);
    }

    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion where TStateMachine : IAsyncStateMachine =>
        awaiter.OnCompleted(BoxFor(ref stateMachine).MoveNextAction);

    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion where TStateMachine : IAsyncStateMachine =>
        awaiter.UnsafeOnCompleted(BoxFor(ref stateMachine).MoveNextAction);

    /// <summary>
    /// The box the method continues in. On its first wait the state machine (still on the caller's stack, this builder
    /// inside it) is copied into a box from the thread's cache, after the builder points at the box, so the caller's
    /// copy (which <see cref="Task"/> reads) and the box's agree; later waits find it there.
    /// </summary>
    private Box<TStateMachine> BoxFor<TStateMachine>(ref TStateMachine stateMachine) where TStateMachine : IAsyncStateMachine
    {
        if (_box is Box<TStateMachine> running)
        {
            running.Context = ExecutionContext.Capture();
            return running;
        }
        var box = Box<TStateMachine>.Rent();
        _box = box;
        box.StateMachine = stateMachine;
        box.Context = ExecutionContext.Capture();
        return box;
    }

    /// <summary>The method's result as an IValueTaskSource; back in the cache once the awaiter has the result.</summary>
    private abstract class Box : IValueTaskSource<TResult>
    {
        private ManualResetValueTaskSourceCore<TResult> _core;

        public short Version => _core.Version;

        public void SetResult(TResult result) => _core.SetResult(result);

        public void SetException(Exception exception) => _core.SetException(exception);

        public TResult GetResult(short token)
        {
            try
            {
                return _core.GetResult(token);
            }
            finally
            {
                _core.Reset();
                Recycle();
            }
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);

        protected abstract void Recycle();
    }

    private sealed class Box<TStateMachine> : Box where TStateMachine : IAsyncStateMachine
    {
        // One cache per method and thread, no lock: a connection's exchange runs on its socket thread from start to end
        // (Platform/Epoll keeps a client connection and its upstream ones on one loop), so a box is given back where it
        // was rented. (A cache shared under a lock, needed while .NET's own socket threads split an exchange, cost ten
        // lock round trips per proxied request: 1.7% of the agent's CPU.) A box is ~250 B, a full cache a few KiB.
        [ThreadStatic]
        private static Box<TStateMachine>?[]? t_cache;
        [ThreadStatic]
        private static int t_cached;

        public TStateMachine StateMachine = default!;
        public ExecutionContext? Context;

        public Box() => MoveNextAction = MoveNext;

        public Action MoveNextAction { get; }

        public static Box<TStateMachine> Rent()
        {
            var cache = t_cache;
            if (cache is not null && t_cached > 0)
            {
                var box = cache[--t_cached]!;
                cache[t_cached] = null;
                return box;
            }
            return new Box<TStateMachine>();
        }

        protected override void Recycle()
        {
            StateMachine = default!;
            Context = null;
            var cache = t_cache ??= new Box<TStateMachine>?[CacheSize];
            if (t_cached < cache.Length) cache[t_cached++] = this;
        }

        private void MoveNext()
        {
            if (Context is { } context) ExecutionContext.Run(context, static box => ((Box<TStateMachine>)box!).StateMachine.MoveNext(), this);
            else StateMachine.MoveNext();
        }
    }
}
