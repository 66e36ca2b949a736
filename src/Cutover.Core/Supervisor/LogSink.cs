using System.Globalization;
using Cutover.Logging;

namespace Cutover.Supervisor;

/// <summary>
/// An app's log: one line per write, with a timestamp and the instance id, in CUTOVER_HOME/logs/&lt;app&gt;/current.log,
/// rotated by size (logs.max_size) into &lt;time&gt;.log files of which logs.retain are kept.
/// </summary>
public sealed class LogSink : IDisposable
{
    public const string CurrentName = "current.log";
    private readonly RotatingLogFile _file;

    public LogSink(string dir, long maxBytes = 10L << 20, int retain = 5)
    {
        _file = new RotatingLogFile(Path.Combine(dir, CurrentName), "", maxBytes, retain);
    }

    public string CurrentPath => _file.CurrentPath;

    /// <summary>
    /// The app's secrets (env_file, ${VAR}) as `***` in what its instances print: a log is read by more people, and
    /// kept longer, than the env file. Set by the runtime from the release's env files.
    /// </summary>
    public Config.Redactor Redactor { get; set; } = Config.Redactor.None;

    public void SetLimits(long maxBytes, int retain) => _file.SetLimits(maxBytes, retain);

    public void Write(string instance, int? pid, string stream, string line) =>
        _file.Write($"{DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)} {instance} {pid?.ToString(CultureInfo.InvariantCulture) ?? "-"} {stream} {Redactor.Redact(line)}\n");

    public void Dispose() => _file.Dispose();
}
