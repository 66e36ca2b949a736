namespace Cutover.Cli.Output.Top;

/// <summary>
/// The log lines `l` shows in top: the newest <see cref="Capacity"/> of them, added by the task that follows the app's
/// logs (locally or on its host) while the screen reads them, so both sides take the lock.
/// </summary>
public sealed class TopLogView(string title, int capacity = 1000)
{
    private readonly Queue<string> _lines = new();
    private readonly Lock _gate = new();

    public string Title { get; } = title;
    public int Capacity { get; } = capacity;

    public void Add(string line)
    {
        lock (_gate)
        {
            _lines.Enqueue(line);
            while (_lines.Count > Capacity) _lines.Dequeue();
        }
    }

    /// <summary>The newest <paramref name="count"/> lines, oldest first.</summary>
    public IReadOnlyList<string> Lines(int count)
    {
        lock (_gate) return _lines.Skip(Math.Max(0, _lines.Count - count)).ToList();
    }
}
