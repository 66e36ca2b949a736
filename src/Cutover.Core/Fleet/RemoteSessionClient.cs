using System.Text;
using System.Text.Json;
using Cutover.Config;
using Cutover.Progress;
using Renci.SshNet;

namespace Cutover.Fleet;

/// <summary>
/// The deployer's end of a host's `cutover remote session`: sends one JSON request at a time, replays the host's
/// progress events (prefixed with the host by the caller's progress) and returns the result. When the channel
/// or the connection ends before the result, the host stopped answering: a <see cref="HostException"/> naming it.
/// </summary>
public sealed class RemoteSessionClient : IAsyncDisposable
{
    private readonly HostConnection _connection;
    private readonly SshCommand _command;
    private readonly IDeployProgress _progress;
    private readonly Task _running;
    private readonly Stream _input;
    private readonly StreamReader _output;
    private Task<string?>? _pendingLine;

    internal RemoteSessionClient(HostConnection connection, SshCommand command, IDeployProgress progress)
    {
        _connection = connection;
        _command = command;
        _progress = progress;
        _running = command.ExecuteAsync(CancellationToken.None);
        _input = command.CreateInputStream();
        _output = new StreamReader(command.OutputStream, Encoding.UTF8);
    }

    /// <summary>True once the remote process has exited or the connection is gone.</summary>
    public bool Ended => _running.IsCompleted;

    public async Task<SessionResult<TAnswer>> RequestAsync<TAnswer>(SessionRequest<TAnswer> request, CancellationToken cancellationToken) where TAnswer : class
    {
        await SendAsync(request, cancellationToken);
        return await ReplyAsync<TAnswer>(cancellationToken);
    }

    /// <summary>Sends one request line; once this returns, the session has it.</summary>
    public async Task SendAsync(SessionRequest request, CancellationToken cancellationToken)
    {
        try
        {
            var line = JsonSerializer.Serialize(request, Json.Compact) + "\n";
            await _input.WriteAsync(Encoding.UTF8.GetBytes(line), cancellationToken);
            await _input.FlushAsync(cancellationToken);
        }
        catch (Exception e) when (HostConnection.IsConnectionFailure(e))
        {
            throw _connection.Lost(e);
        }
    }

    /// <summary>
    /// Relays the session's progress lines until the result of the request last sent. A line that is neither (not
    /// JSON, an unknown event, a field missing) ends the read with an error naming the host: after it, nothing the
    /// host says can be trusted to mean what the deployer would read into it.
    /// </summary>
    public async Task<SessionResult<TAnswer>> ReplyAsync<TAnswer>(CancellationToken cancellationToken) where TAnswer : class
    {
        while (true)
        {
            var text = await ReadLineAsync(cancellationToken);
            if (text is null)
                throw new HostException(_connection.Host, "stopped answering: the remote session ended before it replied" + await ExitDetailAsync());
            if (Interpret<TAnswer>(_connection.Host, text, _progress) is { } result) return result;
        }
    }

    /// <summary>
    /// One line of a host's session: progress is replayed on <paramref name="progress"/> (null returned), the result
    /// returned; anything else is a <see cref="HostException"/> naming the host and the line.
    /// </summary>
    internal static SessionResult<TAnswer>? Interpret<TAnswer>(FleetHost host, string line, IDeployProgress progress) where TAnswer : class
    {
        switch (ProgressStream<SessionResult<TAnswer>>.TryRead(line, out var problem))
        {
            case SessionResult<TAnswer> result:
                return result;
            case ProgressEvent.CommandFailed failed:
                throw new HostException(host, $"the remote session failed ({failed.Kind}): {string.Join("; ", failed.Errors)}");
            case { } progressEvent:
                progressEvent.ReplayOn(progress);
                return null;
            default:
                throw new HostException(host, $"sent a line that is neither a progress event nor a result ({problem}): {Json.Quote(line)}");
        }
    }

    /// <summary>
    /// The next line, or null at the end. The read races the command itself: when the connection drops, SSH.NET
    /// ends the command with an exception, and that must not leave us waiting on a stream nobody will close.
    /// </summary>
    private async Task<string?> ReadLineAsync(CancellationToken cancellationToken)
    {
        _pendingLine ??= Task.Run(() => _output.ReadLine(), CancellationToken.None);
        var done = await Task.WhenAny(_pendingLine, _running).WaitAsync(cancellationToken);
        if (done == _running && !_pendingLine.IsCompleted)
        {
            // The command ended: whatever it wrote last may still be in the pipe; give the reader a moment.
            if (_running.IsFaulted)
                throw _connection.Lost(_running.Exception!.GetBaseException());
            await Task.WhenAny(_pendingLine, Task.Delay(TimeSpan.FromSeconds(2), cancellationToken));
            if (!_pendingLine.IsCompleted) return null;
        }
        try
        {
            var line = await _pendingLine;
            _pendingLine = null;
            return line;
        }
        catch (Exception e) when (HostConnection.IsConnectionFailure(e))
        {
            _pendingLine = null;
            throw _connection.Lost(e);
        }
    }

    private async Task<string> ExitDetailAsync()
    {
        await Task.WhenAny(_running, Task.Delay(TimeSpan.FromSeconds(2)));
        if (_running.IsFaulted) return $" (connection lost: {_running.Exception!.GetBaseException().Message})";
        if (!_running.IsCompleted) return "";
        var error = _command.Error;
        return $" (exit {_command.ExitStatus?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"}{(string.IsNullOrWhiteSpace(error) ? "" : ": " + HostConnection.FirstLines(error))})";
    }

    /// <summary>
    /// Closes the session's stdin (the remote side aborts by itself if it has not switched) and waits a while for
    /// it to exit, so its cleanup is done before the deployer reports.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            _input.Dispose();
        }
        catch (Exception e) when (HostConnection.IsConnectionFailure(e))
        {
        }
        try
        {
            await _running.WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (Exception e) when (HostConnection.IsConnectionFailure(e) || e is OperationCanceledException)
        {
        }
        _command.Dispose();
    }
}
