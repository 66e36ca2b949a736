using Cutover.Progress;

namespace Cutover.Deploy;

/// <summary>Sends hook output both to the user and to the release's own log file.</summary>
public sealed class ReleaseLog(string path, IDeployProgress progress, Config.Redactor? redactor = null) : IDisposable
{
    private readonly StreamWriter _writer = new(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };

    public void Write(string phase, string line)
    {
        if (redactor is not null) line = redactor.Redact(line);
        _writer.WriteLine($"{DateTimeOffset.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} [{phase}] {line}");
        progress.Output(phase, line);
    }

    public void Dispose() => _writer.Dispose();
}
