namespace Cutover.Cli.Output.Top;

/// <summary>What a key press asks `cutover top` to do.</summary>
public enum TopKey
{
    None,
    /// <summary>q: quit from the table; back to the table from the logs.</summary>
    Quit,
    /// <summary>Escape: back to the table from the logs (nothing in the table).</summary>
    Back,
    Up,
    Down,
    /// <summary>l: the selected app's logs.</summary>
    Logs,
}

/// <summary>
/// Which app is selected (by its row key, host/app, so a row that moves keeps its selection) and whether its logs are
/// shown; <see cref="Done"/> once top is to exit.
/// </summary>
public sealed record TopScreen(string? Selected, bool Logs, bool Done = false);

/// <summary>The keys of `cutover top` and what each does to the screen; pure, so the live loop only reads keys and redraws.</summary>
public static class TopKeys
{
    public const string Help = "q quit · ↑/↓ select app · l logs of the selected app (q or Esc back) · Ctrl-C quit";
    public const string LogsHelp = "q or Esc back to top · Ctrl-C quit";

    public static TopKey Of(ConsoleKeyInfo key) => key.Key switch
    {
        ConsoleKey.UpArrow => TopKey.Up,
        ConsoleKey.DownArrow => TopKey.Down,
        ConsoleKey.Escape => TopKey.Back,
        _ => char.ToLowerInvariant(key.KeyChar) switch
        {
            'q' => TopKey.Quit,
            'l' => TopKey.Logs,
            // vi keys, as top and htop take them.
            'k' => TopKey.Up,
            'j' => TopKey.Down,
            _ => TopKey.None,
        },
    };

    /// <summary>The screen after <paramref name="key"/>, given the rows (host/app keys, in display order) shown now.</summary>
    public static TopScreen Apply(TopScreen screen, TopKey key, IReadOnlyList<string> rows)
    {
        // The logs stay those of the app they were opened for, whatever happens to the rows meanwhile.
        if (screen.Logs) return key is TopKey.Quit or TopKey.Back ? screen with { Logs = false } : screen;
        var selected = Selected(screen, rows);
        var at = selected is null ? -1 : IndexOf(rows, selected);
        return key switch
        {
            TopKey.Quit => screen with { Done = true },
            TopKey.Up when at > 0 => screen with { Selected = rows[at - 1] },
            TopKey.Down when at >= 0 && at < rows.Count - 1 => screen with { Selected = rows[at + 1] },
            TopKey.Logs when selected is not null => screen with { Selected = selected, Logs = true },
            _ => screen with { Selected = selected },
        };
    }

    /// <summary>The selected row if it is still shown, else the first one (an app that went away loses the selection).</summary>
    public static string? Selected(TopScreen screen, IReadOnlyList<string> rows) =>
        screen.Selected is { } s && IndexOf(rows, s) >= 0 ? s : rows.Count > 0 ? rows[0] : null;

    private static int IndexOf(IReadOnlyList<string> rows, string key)
    {
        for (var i = 0; i < rows.Count; i++)
            if (rows[i] == key) return i;
        return -1;
    }
}
