using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Cutover.Tests.Support;

namespace Cutover.Tests.Doctor;

/// <summary>
/// `cutover doctor` against real things: an nginx master, a read-only mount, a socket held by another process, an
/// agent that says it is another version. Each check fails for its own reason and passes on a good setup.
/// </summary>
public sealed class DoctorTests : IDisposable
{
    private readonly AgentBed _bed = new();
    private Dictionary<string, string> Env => new() { ["CUTOVER_HOME"] = _bed.Home };

    public void Dispose() => _bed.Dispose();

    private static int Run(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardError = true };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        process.StandardError.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode;
    }

    private string SymlinkConfig(string root)
    {
        File.WriteAllText(_bed.Combine("cutover.yml"), $"app: shop\nroot: {root}\n");
        return _bed.Combine("cutover.yml");
    }

    [Fact]
    [Trait(Needs.Trait, Needs.Nginx)]
    public async Task Nginx_serving_the_root_with_realpath_root_is_ok()
    {
        Directory.CreateDirectory(_bed.Root);
        SymlinkConfig(_bed.Root);
        using var nginx = new NginxOnly(_bed.Root, "$realpath_root", "$realpath_root");

        var run = await DoctorRun.RunAsync(_bed.Path, Env);

        Assert.True(run.Result.ExitCode == 0, run.ToString());
        Assert.Equal("ok", run["nginx"].Status);
        Assert.Contains($"nginx (pid {nginx.Pid}) server doctor.test serves {_bed.Root} with $realpath_root", run["nginx"].Message);
        Assert.Equal("ok", run["root"].Status);
        Assert.Equal("ok", run["filesystem"].Status);
        Assert.DoesNotContain(run.Findings, f => f.Status == "error");
    }

    [Fact]
    [Trait(Needs.Trait, Needs.Nginx)]
    public async Task Nginx_serving_the_root_without_realpath_root_is_an_error_with_the_fix()
    {
        Directory.CreateDirectory(_bed.Root);
        SymlinkConfig(_bed.Root);
        // DOCUMENT_ROOT left to /etc/nginx/fastcgi_params' $document_root: read through the include.
        using var nginx = new NginxOnly(_bed.Root, "$document_root", documentRoot: null);

        var run = await DoctorRun.RunAsync(_bed.Path, Env);

        Assert.True(run.Result.ExitCode == 1, run.ToString());
        var finding = run["nginx"];
        Assert.Equal("error", finding.Status);
        Assert.Contains("SCRIPT_FILENAME is $document_root$fastcgi_script_name, not $realpath_root", finding.Message);
        Assert.Contains("DOCUMENT_ROOT is $document_root, not $realpath_root", finding.Message);
        Assert.Contains("fastcgi_param SCRIPT_FILENAME $realpath_root$fastcgi_script_name", finding.Fix);

        // The human rendering: one line per check, the fix under it.
        var text = await CutoverCli.RunAsync(_bed.Path, Env, "doctor");
        Assert.Equal(1, text.ExitCode);
        Assert.Contains("\nerror    nginx ", "\n" + text.Stdout);
        Assert.Contains("fix: in each PHP location", text.Stdout);
    }

    [Fact]
    [Trait(Needs.Trait, Needs.Nginx)]
    public async Task Opcache_without_timestamp_validation_needs_a_reset_hook()
    {
        Directory.CreateDirectory(_bed.Root);
        using var nginx = new NginxOnly(_bed.Root, "$realpath_root", "$realpath_root");
        // php-fpm's own ini plus one file turning validation off (an empty first entry keeps the default scan dir).
        var ini = _bed.Combine("php-ini");
        Directory.CreateDirectory(ini);
        File.WriteAllText(Path.Combine(ini, "99-doctor.ini"), "opcache.validate_timestamps=0\n");
        var env = new Dictionary<string, string>(Env) { ["PHP_INI_SCAN_DIR"] = ":" + ini };

        SymlinkConfig(_bed.Root);
        var run = await DoctorRun.RunAsync(_bed.Path, env);
        Assert.Equal("warning", run["opcache"].Status);
        Assert.Contains("opcache.validate_timestamps=0 and no after_switch hook resets opcache", run["opcache"].Message);

        File.AppendAllText(_bed.Combine("cutover.yml"), "hooks:\n  after_switch:\n    - cachetool opcache:reset --fcgi=/run/php/php-fpm.sock\n");
        var withHook = await DoctorRun.RunAsync(_bed.Path, env);
        Assert.Equal("ok", withHook["opcache"].Status);
        Assert.Contains("reset by an after_switch hook", withHook["opcache"].Message);

        var validating = await DoctorRun.RunAsync(_bed.Path, Env);
        Assert.True(validating["opcache"].Status == "ok", validating.ToString());
    }

    [Fact]
    public async Task A_root_on_a_read_only_mount_is_an_error()
    {
        var mount = _bed.Combine("ro");
        Directory.CreateDirectory(mount);
        Assert.Equal(0, Run("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", mount));
        try
        {
            SymlinkConfig(mount);
            var run = await DoctorRun.RunAsync(_bed.Path, Env);

            Assert.True(run.Result.ExitCode == 1, run.ToString());
            Assert.Equal("error", run["root"].Status);
            Assert.Contains($"{mount} is not writable", run["root"].Message);
            Assert.Contains("Read-only file system", run["root"].Message);
            Assert.Equal("warning", run["filesystem"].Status); // cannot try links there: says so, does not crash
        }
        finally
        {
            Run("umount", mount);
        }
        // And on the same path, writable: ok.
        var writable = await DoctorRun.RunAsync(_bed.Path, Env);
        Assert.Equal("ok", writable["root"].Status);
    }

    [Fact]
    public async Task A_proxy_port_held_by_another_process_is_an_error_naming_it()
    {
        using var other = new TcpListener(IPAddress.Loopback, 0);
        other.Start();
        var port = ((IPEndPoint)other.LocalEndpoint).Port;
        _bed.WriteNodeConfig(port, "rolling");

        var run = await DoctorRun.RunAsync(_bed.Path, Env);

        Assert.True(run.Result.ExitCode == 1, run.ToString());
        Assert.Equal("error", run["proxy.listen"].Status);
        Assert.Contains($"127.0.0.1:{port} is held by pid {Environment.ProcessId}", run["proxy.listen"].Message);
        Assert.Equal("warning", run["agent"].Status); // nothing deployed: the first deploy starts it
    }

    [Fact]
    public async Task An_agent_of_another_version_is_an_error()
    {
        _bed.WriteNodeConfig(HealthServer.FreePort(), "rolling");
        var start = _bed.StartInfo("agent");
        start.Environment["CUTOVER_VERSION_OVERRIDE"] = "0.0.1-other";
        using var agent = CutoverCli.Start(start, _ => { });
        await Wait.UntilAsync(() => File.Exists(Path.Combine(_bed.Home, "agent.sock")), TimeSpan.FromSeconds(30), "the agent's socket");

        var run = await DoctorRun.RunAsync(_bed.Path, Env);

        Assert.True(run.Result.ExitCode == 1, run.ToString());
        Assert.Equal("error", run["agent"].Status);
        Assert.Contains($"the agent (pid {agent.Id}) is version 0.0.1-other", run["agent"].Message);
        Assert.Contains("cutover agent upgrade", run["agent"].Fix);
    }

    [Fact]
    public async Task A_deployed_rolling_app_passes_agent_and_port_checks()
    {
        var port = HealthServer.FreePort();
        _bed.WriteNodeConfig(port, "rolling");
        _bed.WriteVersion("1");
        var deploy = await _bed.Cli("deploy", _bed.Source);
        Assert.True(deploy.ExitCode == 0, deploy.All);
        var agentPid = int.Parse(File.ReadAllText(Path.Combine(_bed.Home, "agent.pid")));

        var run = await DoctorRun.RunAsync(_bed.Path, Env);

        Assert.Equal("ok", run["agent"].Status);
        Assert.Contains($"(pid {agentPid})", run["agent"].Message);
        Assert.Equal("ok", run["proxy.listen"].Status);
        Assert.Contains($"held by the agent (pid {agentPid})", run["proxy.listen"].Message);
        Assert.Equal("ok", run["disk"].Status);
        // systemd does not run in this container: a warning, not an error, so the setup passes.
        Assert.NotEqual("error", run["systemd"].Status);
        Assert.True(run.Result.ExitCode == 0, run.ToString());
    }

    [Fact]
    public async Task Bad_input_is_exit_2_and_fleet_flags_without_hosts_are_refused()
    {
        SymlinkConfig(_bed.Root);
        var result = await CutoverCli.RunAsync(_bed.Path, Env, "doctor", "--hosts", "web1");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--hosts is for configs with hosts", result.Stderr);
        var keys = await CutoverCli.RunAsync(_bed.Path, Env, "doctor", "--accept-new-host-keys");
        Assert.Equal(2, keys.ExitCode);
        Assert.Contains("--accept-new-host-keys is for configs with hosts", keys.Stderr);
        var missing = await CutoverCli.RunAsync(_bed.Path, Env, "doctor", "-c", "nope.yml");
        Assert.Equal(2, missing.ExitCode);
    }
}
