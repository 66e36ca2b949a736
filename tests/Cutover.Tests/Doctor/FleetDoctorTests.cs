using System.Text.Json;
using Cutover.Tests.Fleet;
using Cutover.Tests.Support;

namespace Cutover.Tests.Doctor;

/// <summary>`cutover doctor` with hosts: every host's own doctor over SSH, its host key and its clock against ours.</summary>
[Collection(FleetCollection.Name)]
[Trait(Needs.Trait, Needs.Sshd)]
public sealed class FleetDoctorTests(SshFleet fleet, PublishedCutover published) : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly string _app = "dr" + Guid.NewGuid().ToString("N")[..8];
    private string RootOf(SshHost host) => Path.Combine(host.Root, _app);

    public void Dispose() => _dir.Dispose();

    private string Config(string knownHosts)
    {
        var path = _dir.Combine("cutover.yml");
        File.WriteAllText(path, $"""
            app: {_app}
            strategy: symlink
            root: /srv/{_app}
            {FleetDeployTests.HostsYaml(fleet.Hosts.Take(2), RootOf)}
            ssh:
              key: {fleet.ClientKey}
              known_hosts: {knownHosts}
            """.Replace("\n\n", "\n"));
        return path;
    }

    private Task<CliResult> Cli(params string[] args) =>
        CutoverCli.RunAsync(_dir.Path, new Dictionary<string, string> { ["CUTOVER_SELF_CONTAINED"] = published.Binary }, args);

    private static List<(string Host, string Check, string Status, string Message)> Findings(CliResult result) =>
        JsonDocument.Parse(result.Stdout).RootElement.EnumerateArray()
            .Select(f => (f.GetProperty("host").GetString()!, f.GetProperty("check").GetString()!, f.GetProperty("status").GetString()!, f.GetProperty("message").GetString()!))
            .ToList();

    [Fact]
    public async Task Every_host_runs_its_checks_and_reports_host_key_and_clock()
    {
        foreach (var host in fleet.Hosts.Take(2)) if (host.Sshd is null) fleet.Start(host);
        var config = Config(fleet.KnownHosts);
        var source = _dir.Combine("src");
        AppFactory.WriteHelloPhp(source, "1");
        var deploy = await Cli("deploy", source, "-c", config);
        Assert.True(deploy.ExitCode == 0, deploy.All);

        var doctor = await Cli("doctor", "--json", "-c", config);

        Assert.True(doctor.ExitCode == 0, doctor.All);
        var findings = Findings(doctor);
        foreach (var host in fleet.Hosts.Take(2))
        {
            Assert.Contains(findings, f => f.Host == host.Name && f.Check == "ssh" && f.Status == "ok");
            Assert.Contains(findings, f => f.Host == host.Name && f.Check == "clock" && f.Status == "ok" && f.Message.Contains("this machine"));
            // The host's own root check, run there with the build the deploy installed.
            Assert.Contains(findings, f => f.Host == host.Name && f.Check == "root" && f.Status == "ok" && f.Message == $"{RootOf(host)} exists and is writable");
        }
    }

    [Fact]
    public async Task A_host_whose_key_is_not_known_is_an_error()
    {
        foreach (var host in fleet.Hosts.Take(2)) if (host.Sshd is null) fleet.Start(host);
        var empty = _dir.Combine("known_hosts");
        File.WriteAllText(empty, "");
        var doctor = await Cli("doctor", "--json", "-c", Config(empty));

        Assert.True(doctor.ExitCode == 1, doctor.All);
        var findings = Findings(doctor);
        foreach (var host in fleet.Hosts.Take(2))
            Assert.Contains(findings, f => f.Host == host.Name && f.Check == "ssh" && f.Status == "error");
        Assert.Empty(File.ReadAllText(empty)); // doctor records no key without --accept-new-host-keys
    }
}
