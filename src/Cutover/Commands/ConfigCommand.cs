using System.CommandLine;
using Cutover.Config;

namespace Cutover.Cli.Commands;

/// <summary>`cutover config [--json]`: the effective configuration with each value's file and line (EffectiveConfig).</summary>
public static class ConfigCommand
{
    public static Command Create(CommonOptions common, CliEnvironment env)
    {
        var command = new Command("config", "Show the effective configuration (defaults and -c layers applied), each value with the file:line it came from; secrets as ***")
        {
            common.Json,
        };
        command.SetAction((parse, ct) =>
        {
            var json = parse.GetValue(common.Json);
            return CommandRunner.RunAsync(env, json, () =>
            {
                var effective = EffectiveConfig.Build(common.ConfigFiles(parse));
                env.Out.Write(json ? effective.ToJson().ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n" : effective.ToText());
                return Task.FromResult(ExitCodes.Ok);
            });
        });
        return command;
    }
}
