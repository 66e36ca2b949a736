using Cutover.Cli.Output;
using Cutover.Progress;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Spectre.Console;

namespace Cutover.Cli.Commands;

/// <summary>The terminal the CLI writes to, and the renderer that suits it.</summary>
public sealed class CliEnvironment(TextWriter stdout, TextWriter stderr, bool interactive)
{
    public TextWriter Out { get; } = stdout;
    public TextWriter Error { get; } = stderr;

    /// <summary>
    /// Created on first use: Spectre.Console's terminal detection costs a few milliseconds of start-up that `--version`,
    /// `--help` and every command printing plain lines or JSON would otherwise pay (issue 14).
    /// </summary>
    public IAnsiConsole Console => _console.Value;

    private readonly Lazy<IAnsiConsole> _console = new(() => AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(stdout),
        Ansi = interactive ? AnsiSupport.Detect : AnsiSupport.No,
        ColorSystem = interactive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
        Interactive = interactive ? InteractionSupport.Detect : InteractionSupport.No,
    }));

    public bool Interactive { get; } = interactive;

    /// <summary>SIGINT/SIGTERM handling, set by Program for the real process (null in-process).</summary>
    public TerminationSignals? Signals { get; init; }

    /// <summary>A deploy or rollback finishes its undo whatever further signals arrive.</summary>
    public IDisposable ProtectUndo() => Signals?.Protect() ?? NoSection.Instance;

    private sealed class NoSection : IDisposable
    {
        public static readonly NoSection Instance = new();
        public void Dispose() { }
    }

    public static CliEnvironment FromProcess(TerminationSignals signals) =>
        new(System.Console.Out, System.Console.Error,
            !System.Console.IsOutputRedirected && Environment.GetEnvironmentVariable("TERM") is not (null or "dumb")) { Signals = signals };

    /// <summary>Diagnostics for --verbose, on stderr so they never mix with --json on stdout.</summary>
    public ILoggerFactory Logging(bool verbose) => verbose
        ? LoggerFactory.Create(b => b
            .SetMinimumLevel(LogLevel.Debug)
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace)
            .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; })
            .AddFilter("Microsoft", LogLevel.Warning))
        : NullLoggerFactory.Instance;

    public IDeployProgress Progress(bool json) =>
        json ? new JsonProgress(Out) : Interactive ? new RichProgress(Console) : new PlainProgress(Out);
}
