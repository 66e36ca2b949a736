using System.CommandLine;
using System.Text.Json;
using Cutover.Doctor;
using Cutover.Releases;
using Spectre.Console;

namespace Cutover.Cli.Commands;

/// <summary>
/// `cutover doctor`: this machine (or every host of a fleet) against the config, one line per check. Exit 0 when
/// nothing is an error (warnings allowed), 1 with any error; it reads and probes, and changes nothing live.
/// </summary>
public static class DoctorCommand
{
    public static Command Create(CommonOptions common, CliEnvironment env)
    {
        var command = new Command("doctor", "Check this machine (or every host) against the config: root, nginx, proxy port, agent, systemd, database")
        {
            common.Json, common.AcceptNewHostKeys, common.Hosts, common.Roles,
        };
        command.SetAction((parse, ct) =>
        {
            var json = parse.GetValue(common.Json);
            return CommandRunner.RunAsync(env, json, async () =>
            {
                var config = common.LoadConfig(parse);
                if (config.Fleet is null && parse.GetValue(common.AcceptNewHostKeys))
                    throw new UsageException($"--accept-new-host-keys is for configs with hosts; {config.File} deploys on this machine");
                var findings = common.Selection(parse, config) is { } selection
                    ? await FleetDoctor.RunAsync(config, parse.GetValue(common.AcceptNewHostKeys), selection, ct)
                    : await DoctorChecks.RunAsync(DoctorChecks.For(config), ct);
                if (json) env.Out.WriteLine(JsonSerializer.Serialize(findings, Json.Options));
                else Render(env, findings);
                return findings.Any(f => f.Status == DoctorStatus.Error) ? ExitCodes.Failed : ExitCodes.Ok;
            });
        });
        return command;
    }

    private static void Render(CliEnvironment env, IReadOnlyList<DoctorFinding> findings)
    {
        var width = findings.Max(f => f.Check.Length + (f.Host is null ? 0 : f.Host.Length + 1));
        foreach (var f in findings)
        {
            var (word, colour) = f.Status switch
            {
                DoctorStatus.Ok => ("ok", "green"),
                DoctorStatus.Warning => ("warning", "yellow"),
                _ => ("error", "red"),
            };
            var name = (f.Host is null ? f.Check : $"{f.Host} {f.Check}").PadRight(width);
            // Coloured on a terminal; plain unwrapped lines in a pipe or CI log, where grep reads them.
            if (env.Interactive) env.Console.MarkupLine($"[{colour}]{word,-7}[/]  {Markup.Escape(name)}  {Markup.Escape(f.Message)}");
            else env.Out.WriteLine($"{word,-7}  {name}  {f.Message}");
            if (f.Fix is not null) env.Out.WriteLine($"{"",-7}  {new string(' ', width)}  fix: {f.Fix}");
        }
        var errors = findings.Count(f => f.Status == DoctorStatus.Error);
        var warnings = findings.Count(f => f.Status == DoctorStatus.Warning);
        env.Out.WriteLine($"{findings.Count} checks: {errors} errors, {warnings} warnings");
    }
}
