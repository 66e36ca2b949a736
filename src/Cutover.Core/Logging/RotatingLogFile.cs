using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Cutover.Logging;

/// <summary>
/// A log file that rotates by size and keeps a bounded number of old files. The live file always has the same name
/// (so `tail -f` and `cutover logs` find it); at the size limit it is renamed to &lt;prefix&gt;&lt;time&gt;.log (renamed,
/// never copied and truncated, so no line is lost) and a new one is opened; then all but the newest `retain` rotated
/// files are deleted. Used for instance logs, the access log and agent.log.
/// </summary>
public sealed partial class RotatingLogFile : IDisposable
{
    private readonly object _gate = new();
    private readonly string _dir;
    private readonly string _rotatedPrefix;
    private readonly Regex _rotatedName;
    private long _maxBytes;
    private int _retain;
    private FileStream _stream;

    public RotatingLogFile(string currentPath, string rotatedPrefix, long maxBytes, int retain)
    {
        CurrentPath = currentPath;
        _dir = Path.GetDirectoryName(currentPath)!;
        _rotatedPrefix = rotatedPrefix;
        _rotatedName = new Regex($@"^{Regex.Escape(rotatedPrefix)}\d{{8}}_\d{{6}}_\d{{3}}(_\d+)?\.log$", RegexOptions.CultureInvariant);
        _maxBytes = maxBytes;
        _retain = retain;
        Directory.CreateDirectory(_dir);
        _stream = Open();
    }

    public string CurrentPath { get; }

    /// <summary>New limits (a changed config) take effect from the next write.</summary>
    public void SetLimits(long maxBytes, int retain)
    {
        lock (_gate)
        {
            _maxBytes = maxBytes;
            _retain = retain;
        }
    }

    /// <summary>Appends text (whole lines) and flushes, so a crash loses nothing written.</summary>
    public void Write(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        lock (_gate)
        {
            if (_stream.Length + bytes.Length > _maxBytes && _stream.Length > 0) Rotate();
            // FileMode.Append is no O_APPEND in .NET (it writes at its own offset): during an agent upgrade two agents
            // write agent.log, and each would overwrite the other's lines from its stale offset. To the end, every time.
            _stream.Seek(0, SeekOrigin.End);
            _stream.Write(bytes);
            _stream.Flush();
        }
    }

    /// <summary>The rotated files, oldest first.</summary>
    public IReadOnlyList<string> Rotated() =>
        Directory.GetFiles(_dir, _rotatedPrefix + "*.log").Where(f => _rotatedName.IsMatch(Path.GetFileName(f))).Order(StringComparer.Ordinal).ToList();

    private void Rotate()
    {
        _stream.Dispose();
        var stamp = DateTimeOffset.UtcNow.ToString("yyyyMMdd_HHmmss_fff", CultureInfo.InvariantCulture);
        var target = Path.Combine(_dir, $"{_rotatedPrefix}{stamp}.log");
        for (var n = 2; File.Exists(target); n++) target = Path.Combine(_dir, $"{_rotatedPrefix}{stamp}_{n}.log");
        File.Move(CurrentPath, target);
        _stream = Open();
        var rotated = Rotated();
        foreach (var old in rotated.Take(Math.Max(0, rotated.Count - _retain)))
        {
            try { File.Delete(old); }
            catch (IOException) { } // a reader holding it open on another system; the next rotation tries again
        }
    }

    private FileStream Open() => new(CurrentPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);

    public void Dispose()
    {
        lock (_gate) _stream.Dispose();
    }
}
