using Cutover.Progress;
using Spectre.Console;

namespace Cutover.Cli.Output;

/// <summary>Coloured phase lines for a terminal; hook output is indented under its phase.</summary>
public sealed class RichProgress(IAnsiConsole console) : IDeployProgress
{
    public void PhaseStarted(string phase) => console.MarkupLine($"[grey]▸ {Markup.Escape(phase)}…[/]");

    public void PhaseCompleted(string phase, TimeSpan elapsed, string? detail = null) =>
        console.MarkupLine($"[green]✔[/] [bold]{Markup.Escape(phase),-14}[/] [grey]{Seconds(elapsed),8}[/]  {Markup.Escape(detail ?? "")}");

    public void PhaseFailed(string phase, TimeSpan elapsed, string error) =>
        console.MarkupLine($"[red]✘[/] [bold]{Markup.Escape(phase),-14}[/] [grey]{Seconds(elapsed),8}[/]  [red]{Markup.Escape(error)}[/]");

    public void Output(string phase, string line) => console.MarkupLine($"[grey]  │ {Markup.Escape(line)}[/]");

    public void Info(string message) => console.MarkupLine($"[blue]ℹ[/] {Markup.Escape(message)}");

    public void Warning(string message) => console.MarkupLine($"[yellow]![/] {Markup.Escape(message)}");
    // People see each batch as its phase ("batch 1/2") already.
    public void Batch(string process, int number, int of, Cutover.Progress.BatchStep step) { }

    internal static string Seconds(TimeSpan t) => t.TotalSeconds < 10 ? $"{t.TotalSeconds:0.000}s" : $"{t.TotalSeconds:0.0}s";
}
