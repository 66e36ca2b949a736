using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Cutover.Logging;

/// <summary>
/// agent.log, written by the agent itself (not through its stdout), one line per event into a
/// <see cref="RotatingLogFile"/>, so it has a size limit and a retention however long the agent runs.
/// Which categories and levels get here is the logger factory's filters' business.
/// </summary>
public sealed class FileLoggerProvider(RotatingLogFile file) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new FileLogger(file, categoryName);

    public void Dispose() => file.Dispose();

    private sealed class FileLogger(RotatingLogFile file, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            var line = new StringBuilder()
                .Append(DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)).Append(' ')
                .Append(Level(logLevel)).Append(' ').Append(category).Append(": ")
                .Append(formatter(state, exception).ReplaceLineEndings(" "));
            if (exception is not null) line.Append(' ').Append(exception.ToString().ReplaceLineEndings(" | "));
            file.Write(line.Append('\n').ToString());
        }

        private static string Level(LogLevel level) => level switch
        {
            LogLevel.Trace => "trace",
            LogLevel.Debug => "debug",
            LogLevel.Information => "info",
            LogLevel.Warning => "warn",
            LogLevel.Error => "error",
            _ => "crit",
        };
    }
}
