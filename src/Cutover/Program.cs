using System.CommandLine;
using Cutover.Cli.Commands;
using Cutover.Platform;

// The native build runs a few commands itself and hands every other to the JIT build beside it (NativeBuild).
if (NativeBuild.IsNative && !NativeBuild.RunsItself(args)) return NativeBuild.HandOver();

using var signals = new TerminationSignals(Console.Error);
var env = CliEnvironment.FromProcess(signals);
var common = new CommonOptions();
var root = new RootCommand("cutover: zero-downtime deploys for your own servers") { common.Config, common.Verbose };
// The commands the native build runs itself (NativeBuild.RunsItself); every build has them.
Command[] native =
[
    RollbackCommand.Create(common, env),
    ReleasesCommand.Create(common, env),
    StatusCommand.Create(common, env),
    ProbeCommand.Create(common, env),
];
// JitOnly is a compile-time constant in the native build: only the commands it runs itself are compiled into it.
Command[] commands = JitOnly.IsAvailable
    ?
    [
        InitCommand.Create(common, env),
        ConfigCommand.Create(common, env),
        DeployCommand.Create(common, env),
        .. native,
        DoctorCommand.Create(common, env),
        DemoCommand.Create(env),
        AgentCommands.Agent(env),
        AgentCommands.Stop(common, env),
        AgentCommands.Start(common, env),
        LogsCommand.Create(common, env),
        TopCommand.Create(common, env),
        ExecCommand.Create(common, env),
        TrafficCommands.Maintenance(common, env),
        TrafficCommands.Pause(common, env),
        TrafficCommands.Resume(common, env),
        InstanceCommands.Restart(common, env),
        InstanceCommands.Scale(common, env),
        DemoAppCommand.Create(),
        MigrationsCommands.Migrations(common, env),
        MigrationsCommands.Migrate(common, env),
        RemoteCommands.Create(common, env),
        HistoryCommand.Create(common, env),
        StartupCommand.Create(env),
    ]
    : native;
foreach (var command in commands) root.Subcommands.Add(command);
// Signals are ours (TerminationSignals), not System.CommandLine's: its handler would end the process two seconds
// after Ctrl-C, in the middle of putting the previous release back.
var parsed = root.Parse(args);
// A flag or command that does not parse is bad input, exit 2 like every other refusal of input (System.CommandLine's
// own default is 1, which the house keeps for a failing environment).
if (parsed.Errors.Count > 0 && parsed.Action is System.CommandLine.Invocation.ParseErrorAction)
{
    foreach (var error in parsed.Errors) Console.Error.WriteLine($"error: {error.Message}");
    var path = new List<string>();
    for (var command = parsed.CommandResult; command is not null; command = command.Parent as System.CommandLine.Parsing.CommandResult)
        path.Insert(0, command.Parent is null ? "cutover" : command.Command.Name);
    Console.Error.WriteLine($"see `{string.Join(' ', path)} --help`");
    return 2;
}
return await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }, signals.Token);
