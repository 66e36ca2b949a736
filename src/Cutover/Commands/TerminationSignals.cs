using System.Runtime.InteropServices;

namespace Cutover.Cli.Commands;

/// <summary>
/// SIGINT and SIGTERM for every command. The first one cancels the command's token. While a command is inside
/// <see cref="Protect"/> (a deploy or rollback, which must finish putting the previous release back), later signals
/// are answered on stderr and do not stop the process: an undo cut short would leave a half-switched app. Outside
/// such a section a second signal ends the process at once, as users expect of a stuck command.
/// </summary>
public sealed class TerminationSignals : IDisposable
{
    private readonly CancellationTokenSource _cancel = new();
    private readonly TextWriter _error;
    private readonly PosixSignalRegistration[] _registrations;
    private int _signals;
    private int _protectedSections;

    public TerminationSignals(TextWriter error)
    {
        _error = error;
        _registrations = [PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal), PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal)];
    }

    /// <summary>Cancelled by the first SIGINT or SIGTERM.</summary>
    public CancellationToken Token => _cancel.Token;

    /// <summary>A section in which the command finishes its undo whatever further signals arrive.</summary>
    public IDisposable Protect()
    {
        Interlocked.Increment(ref _protectedSections);
        return new Section(this);
    }

    private void OnSignal(PosixSignalContext context)
    {
        var name = context.Signal == PosixSignal.SIGINT ? "SIGINT" : "SIGTERM";
        var protectedNow = Volatile.Read(ref _protectedSections) > 0;
        if (Interlocked.Increment(ref _signals) == 1)
        {
            context.Cancel = true;
            if (protectedNow) _error.WriteLine($"cutover: {name}: stopping; anything already switched is put back before cutover exits");
            // Cancellation callbacks run on the caller's thread; the signal thread only hands it over.
            _ = Task.Run(_cancel.Cancel);
            return;
        }
        if (protectedNow)
        {
            context.Cancel = true;
            _error.WriteLine($"cutover: {name} again: still putting the previous release back; this does not stop the undo (SIGKILL would leave it half done)");
            return;
        }
        context.Cancel = false; // the runtime's default: the process ends
    }

    public void Dispose()
    {
        foreach (var registration in _registrations) registration.Dispose();
        _cancel.Dispose();
    }

    private sealed class Section(TerminationSignals owner) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) Interlocked.Decrement(ref owner._protectedSections);
        }
    }
}
