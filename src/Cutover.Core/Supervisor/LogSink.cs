using System.Globalization;
using System.Text;

namespace Cutover.Supervisor;

/// <summary>
/// An app's log: one line per write, with a timestamp and the instance id, in CUTOVER_HOME/logs/&lt;app&gt;/.
/// Rotation by size starts a new file (the old one is renamed, never copied and truncated, so no line is lost).
/// </summary>
public sealed class LogSink : IDisposable
{
    public const string CurrentName = "current.log";
    private readonly object _gate = new();
    private readonly string _dir;
    private readonly long _maxBytes;
    private FileStream _stream;

    public LogSink(string dir, long maxBytes = 10L << 20)
    {
        _dir = dir;
        _maxBytes = maxBytes;
        Directory.CreateDirectory(dir);
        _stream = Open();
    }

    public string CurrentPath => Path.Combine(_dir, CurrentName);

    public void Write(string instance, int? pid, string stream, string line)
    {
        var text = $"{DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)} {instance} {pid?.ToString(CultureInfo.InvariantCulture) ?? "-"} {stream} {line}\n";
        var bytes = Encoding.UTF8.GetBytes(text);
        lock (_gate)
        {
            if (_stream.Length + bytes.Length > _maxBytes && _stream.Length > 0) Rotate();
            _stream.Write(bytes);
            _stream.Flush();
        }
    }

    private void Rotate()
    {
        _stream.Dispose();
        var stamp = DateTimeOffset.UtcNow.ToString("yyyyMMdd_HHmmss_fff", CultureInfo.InvariantCulture);
        var target = Path.Combine(_dir, $"{stamp}.log");
        for (var n = 2; File.Exists(target); n++) target = Path.Combine(_dir, $"{stamp}_{n}.log");
        File.Move(CurrentPath, target);
        _stream = Open();
    }

    private FileStream Open() => new(CurrentPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);

    public void Dispose()
    {
        lock (_gate) _stream.Dispose();
    }
}
