namespace Cutover.Startup;

/// <summary>
/// The systemd unit for the agent: the one text both `cutover startup` prints and README shows (README's block is this
/// template filled with <see cref="ReadmeExample"/>; SystemdUnitTests holds them equal). Type=notify with
/// NotifyAccess=all and ExecReload=`cutover agent upgrade` are what the upgrade's handover relies on (README, "Upgrading
/// Cutover").
/// </summary>
public static class AgentUnit
{
    public const string Template = """
        [Unit]
        Description=Cutover agent
        After=network.target

        [Service]
        User={user}
        Environment=CUTOVER_HOME={home}
        Environment=DOTNET_TieredPGO=1
        Type=notify
        NotifyAccess=all
        ExecStart={cutover} agent
        ExecReload={cutover} agent upgrade
        KillSignal=SIGTERM
        TimeoutStopSec=120
        Restart=always

        [Install]
        WantedBy=multi-user.target

        """;

    /// <summary>The target `enable` hangs the unit under (its wants directory beside the unit).</summary>
    public const string WantedBy = "multi-user.target";

    /// <summary>What README's unit is filled in with.</summary>
    public static readonly AgentUnitValues ReadmeExample = new("deploy", "/home/deploy/.cutover", ["/usr/local/bin/cutover"]);

    public static string Render(AgentUnitValues values) => Template
        .Replace("{user}", values.User, StringComparison.Ordinal)
        .Replace("{home}", values.Home, StringComparison.Ordinal)
        .Replace("{cutover}", string.Join(' ', values.Command.Select(Quote)), StringComparison.Ordinal);

    /// <summary>systemd's quoting for a word with a space or a quote in it (a path under "My Apps"); a plain one as it is.</summary>
    private static string Quote(string word) =>
        word.Any(c => char.IsWhiteSpace(c) || c is '"' or '\\' or '\'') ? "\"" + word.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"" : word;
}

/// <summary>What the unit is filled in with: the user the agent runs as, its CUTOVER_HOME, and the command that is cutover.</summary>
/// <param name="Command">The executable and its leading arguments: [cutover], or [dotnet, exec, cutover.dll].</param>
public sealed record AgentUnitValues(string User, string Home, IReadOnlyList<string> Command);
