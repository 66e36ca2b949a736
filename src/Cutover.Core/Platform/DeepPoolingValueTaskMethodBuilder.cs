using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;

namespace Cutover.Platform;

/// <summary>
/// An async method builder for <see cref="ValueTask{TResult}"/> methods, like .NET's PoolingAsyncValueTaskMethodBuilder
/// but with a deeper cache of state-machine boxes: up to <see cref="CacheSize"/> per method, shared by all threads,
/// where the framework keeps one per thread (and one per core). Why: one epoll wake-up of the proxy starts a batch of
/// requests (many connections) before any of them finishes, and a request often finishes on another socket thread than
/// it started on; with the framework's caches most requests allocated their boxes (three per request, ~500 B, measured
/// with dotnet-trace under wrk, 19:13Z).
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
        // One cache per method shared by every thread, under a lock: the exchange that rents a box on the socket thread
        // that read the request often gives it back on the thread of the instance's socket (.NET gives sockets to its
        // epoll threads in turn, so a client and its upstream connection may belong to different ones), where a cache
        // per thread would fill on one side and stay empty on the other. Two socket threads take this lock briefly;
        // a box is ~250 B, so a full cache is a few KiB.
        private static readonly Lock s_lock = new();
        private static readonly Box<TStateMachine>?[] s_cache = new Box<TStateMachine>?[CacheSize];
        private static int s_cached;

        public TStateMachine StateMachine = default!;
        public ExecutionContext? Context;

        public Box() => MoveNextAction = MoveNext;

        public Action MoveNextAction { get; }

        public static Box<TStateMachine> Rent()
        {
            lock (s_lock)
            {
                if (s_cached > 0)
                {
                    var box = s_cache[--s_cached]!;
                    s_cache[s_cached] = null;
                    return box;
                }
            }
            return new Box<TStateMachine>();
        }

        protected override void Recycle()
        {
            StateMachine = default!;
            Context = null;
            lock (s_lock)
            {
                if (s_cached < s_cache.Length) s_cache[s_cached++] = this;
            }
        }

        private void MoveNext()
        {
            if (Context is { } context) ExecutionContext.Run(context, static box => ((Box<TStateMachine>)box!).StateMachine.MoveNext(), this);
            else StateMachine.MoveNext();
        }
    }
}
