using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Cutover.Agent;

/// <summary>
/// Where one activation's time went inside the agent, step by step from the request's arrival: logged at Debug as one
/// line ("read 0.2 ms, config 0.9 ms, ..."), so a slow switch can be taken apart without a tracer.
/// </summary>
internal sealed class ActivationTrace
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<(string Step, double Ms)> _steps = [];
    private double _last;

    /// <summary>The step that just ended, timed from the previous mark.</summary>
    public void Mark(string step)
    {
        var now = _clock.Elapsed.TotalMilliseconds;
        lock (_steps) _steps.Add((step, now - _last));
        _last = now;
    }

    public override string ToString()
    {
        var text = new StringBuilder();
        lock (_steps)
            foreach (var (step, ms) in _steps)
                text.Append(text.Length == 0 ? "" : ", ").Append(step).Append(' ').Append(ms.ToString("0.00", CultureInfo.InvariantCulture)).Append(" ms");
        return text.Append("; ").Append(_clock.Elapsed.TotalMilliseconds.ToString("0.00", CultureInfo.InvariantCulture)).Append(" ms in all").ToString();
    }
}
