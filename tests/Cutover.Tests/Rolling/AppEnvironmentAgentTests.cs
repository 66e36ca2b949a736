using System.Text;
using System.Text.Json;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Rolling;

/// <summary>
/// env, env_file and ${VAR} through the real CLI and agent with layered configs (-c cutover.yml -c
/// cutover.production.yml): the values reach the instances from a 0600 file outside the release, a rollback brings
/// back the old release's environment, and no secret appears in any file under the root or CUTOVER_HOME (except the
/// env files) or in any output, although the app and a hook print them.
/// </summary>
[Collection(Serial.Name)]
[Trait(Needs.Trait, Needs.Slow)]
public sealed class AppEnvironmentAgentTests(ITestOutputHelper output) : IDisposable
{
    private readonly AgentBed _bed = new();
    private readonly List<CliResult> _outputs = [];

    public void Dispose() => _bed.Dispose();

    internal const string App = """
        const http = require('http');
        const fs = require('fs');
        const version = fs.readFileSync(__dirname + '/VERSION', 'utf8').trim();
        // Prints its secrets on purpose: the app's log must show them as ***.
        console.log(`starting ${version} with token ${process.env.API_TOKEN} and db ${process.env.DATABASE_URL}`);
        const server = http.createServer((req, res) => {
          if (req.url === '/health') { res.end('ok'); return; }
          res.setHeader('Content-Type', 'application/json');
          res.end(JSON.stringify({ version, token: process.env.API_TOKEN || null, db: process.env.DATABASE_URL || null,
            nodeEnv: process.env.NODE_ENV || null, region: process.env.REGION || null }));
        });
        server.listen(Number(process.env.PORT), '127.0.0.1', () => process.send && process.send('ready'));
        process.on('SIGINT', () => server.close(() => process.exit(0)));
        """;

    internal sealed record Seen(string Version, string? Token, string? Db, string? NodeEnv, string? Region);

    private void WriteRelease(string version, bool failHook = false)
    {
        Directory.CreateDirectory(_bed.Source);
        File.WriteAllText(Path.Combine(_bed.Source, "server.js"), App);
        File.WriteAllText(Path.Combine(_bed.Source, "VERSION"), version);
        var fail = Path.Combine(_bed.Source, "FAIL");
        if (failHook) File.WriteAllText(fail, "");
        else File.Delete(fail);
    }

    private async Task<CliResult> Cli(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var env = new Dictionary<string, string>(environment ?? new Dictionary<string, string>()) { ["CUTOVER_HOME"] = _bed.Home };
        var result = await CutoverCli.RunAsync(_bed.Path, env, args);
        output.WriteLine($"$ cutover {string.Join(' ', args)} -> {result.ExitCode}\n{result.All}");
        _outputs.Add(result);
        return result;
    }

    private static async Task<Seen> GetAsync(int port)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        return JsonSerializer.Deserialize<Seen>(await client.GetStringAsync($"http://127.0.0.1:{port}/"), new JsonSerializerOptions(JsonSerializerDefaults.Web))!;
    }

    [Fact]
    public async Task Env_reaches_instances_from_a_0600_file_rolls_back_with_its_release_and_no_secret_is_shown_anywhere()
    {
        var port = HealthServer.FreePort();
        var token1 = "tok1-" + Guid.NewGuid().ToString("N")[..12];
        var token2 = "tok2-" + Guid.NewGuid().ToString("N")[..12];
        var password1 = "pw1-" + Guid.NewGuid().ToString("N")[..12];
        var password2 = "pw2-" + Guid.NewGuid().ToString("N")[..12];
        string[] secrets = [token1, token2, password1, password2];
        File.WriteAllText(_bed.Combine("cutover.yml"), $$"""
            app: envapp
            strategy: rolling
            root: {{_bed.Root}}
            run:
              command: node server.js
              instances: 2
              ready: message
              ready_timeout: 10s
              env:
                REGION: eu
            proxy:
              listen: 127.0.0.1:{{port}}
              drain_timeout: 5s
            rolling:
              monitor: 200ms
            hooks:
              before_switch:
                - echo "hook sees $API_TOKEN and $DATABASE_URL in $NODE_ENV"
                - test ! -f FAIL || { echo "failing with $API_TOKEN" >&2; exit 1; }
            """);
        File.WriteAllText(_bed.Combine("cutover.production.yml"), """
            run:
              instances: 1
            env_file: .env.production
            env:
              NODE_ENV: production
              DATABASE_URL: postgres://app:${DB_PASSWORD}@db/shop
            """);
        string[] config = ["-c", "cutover.yml", "-c", "cutover.production.yml"];
        var envFile = _bed.Combine(".env.production");

        // v1 with token1 / password1.
        File.WriteAllText(envFile, $"# production\nexport API_TOKEN='{token1}'\n");
        WriteRelease("v1");
        var deployed = await Cli(new Dictionary<string, string> { ["DB_PASSWORD"] = password1 }, ["deploy", _bed.Source, .. config]);
        Assert.Equal(0, deployed.ExitCode);
        Assert.Equal(new Seen("v1", token1, $"postgres://app:{password1}@db/shop", "production", "eu"), await GetAsync(port));
        Assert.Contains("hook sees *** and *** in production", deployed.All, StringComparison.Ordinal);

        // The env file: 0600, in .cutover/env/, not in the release; the instances' command lines do not hold it.
        var envFiles = Directory.GetFiles(Path.Combine(_bed.Root, ".cutover", "env"), "*.env");
        var first = Assert.Single(envFiles);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(first));
        Assert.Contains(token1, File.ReadAllText(first), StringComparison.Ordinal);
        foreach (var cmdline in Directory.EnumerateDirectories("/proc").Select(d => Path.Combine(d, "cmdline")))
        {
            string text;
            try { text = File.ReadAllText(cmdline); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            Assert.DoesNotContain(token1, text, StringComparison.Ordinal);
        }

        // v2 with token2 / password2; the layered config reached the agent (run.instances: 1 of the production file).
        File.WriteAllText(envFile, $"API_TOKEN=\"{token2}\"\n");
        WriteRelease("v2");
        var second = await Cli(new Dictionary<string, string> { ["DB_PASSWORD"] = password2 }, ["deploy", _bed.Source, .. config]);
        Assert.Equal(0, second.ExitCode);
        // With v1's env file on disk, its literal NODE_ENV is still no secret: only its secret values are masked.
        Assert.Contains("hook sees *** and *** in production", second.All, StringComparison.Ordinal);
        Assert.Equal(new Seen("v2", token2, $"postgres://app:{password2}@db/shop", "production", "eu"), await GetAsync(port));
        var status = await Cli(null, ["status", "--json", .. config]);
        Assert.Equal(0, status.ExitCode);
        Assert.Single(JsonDocument.Parse(status.Stdout).RootElement.GetProperty("agent").GetProperty("instances").EnumerateArray());

        // A variable missing where deploy runs: a config error naming file, line, key and variable; nothing changes.
        WriteRelease("v3");
        var missing = await Cli(null, ["deploy", _bed.Source, .. config]);
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains($"cutover.production.yml:6:17: env.DATABASE_URL: ${{DB_PASSWORD}} is not set", missing.Stderr, StringComparison.Ordinal);

        // A hook that prints the secret and fails: the deploy fails, v2 stays, the output shows ***.
        WriteRelease("v3", failHook: true);
        var failed = await Cli(new Dictionary<string, string> { ["DB_PASSWORD"] = password2 }, ["deploy", _bed.Source, .. config]);
        Assert.Equal(1, failed.ExitCode);
        Assert.Contains("failing with ***", failed.All, StringComparison.Ordinal);
        Assert.Equal("v2", (await GetAsync(port)).Version);

        // Rollback needs no secrets where it runs and brings back v1's own environment.
        var rolledBack = await Cli(null, ["rollback", .. config]);
        Assert.Equal(0, rolledBack.ExitCode);
        Assert.Equal(new Seen("v1", token1, $"postgres://app:{password1}@db/shop", "production", "eu"), await GetAsync(port));
        // An agent SIGKILLed and started again restarts the instances with v1's environment, from its env file.
        var agentPid = int.Parse(File.ReadAllText(Path.Combine(_bed.Home, "agent.pid")));
        Cutover.Platform.LibC.Kill(agentPid, 9);
        await Wait.WithinAsync(() => !Cutover.Platform.LibC.Kill(agentPid, 0), TimeSpan.FromSeconds(10));
        var agentLines = new List<string>();
        using (_bed.Start(line => { lock (agentLines) agentLines.Add(line); }, "agent"))
        {
            Seen? restored = null;
            await Wait.UntilAsync(async () =>
            {
                try { restored = await GetAsync(port); return true; }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { return false; }
            }, TimeSpan.FromSeconds(60), "the restarted agent to serve the app");
            Assert.Equal(new Seen("v1", token1, $"postgres://app:{password1}@db/shop", "production", "eu"), restored);
        }
        lock (agentLines) _outputs.Add(new CliResult(0, string.Join("\n", agentLines), ""));
        await Cli(null, ["status", "--json", .. config]);
        await Cli(null, ["releases", "--json", .. config]);
        await Cli(null, ["logs", .. config]);

        // The app printed its secrets: its log has *** instead.
        var appLog = File.ReadAllText(Path.Combine(_bed.Home, "logs", "envapp", "current.log"));
        Assert.Contains("starting v1 with token *** and db ***", appLog, StringComparison.Ordinal);

        // No secret anywhere but in the env files themselves.
        var envDir = Path.Combine(_bed.Root, ".cutover", "env") + "/";
        var hits = new List<string>();
        foreach (var dir in new[] { _bed.Root, _bed.Home })
            foreach (var file in Directory.EnumerateFiles(dir, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
            {
                if (file.StartsWith(envDir, StringComparison.Ordinal)) continue;
                byte[] bytes;
                try { bytes = File.ReadAllBytes(file); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
                var text = Encoding.UTF8.GetString(bytes);
                hits.AddRange(secrets.Where(s => text.Contains(s, StringComparison.Ordinal)).Select(s => $"{file}: {s}"));
            }
        foreach (var result in _outputs)
            hits.AddRange(secrets.Where(s => result.All.Contains(s, StringComparison.Ordinal)).Select(s => $"output: {s}"));
        Assert.Empty(hits);
    }

    [Fact]
    public async Task Deploy_env_only_rolls_every_instance_onto_the_new_environment_under_load_with_no_failed_request()
    {
        var port = HealthServer.FreePort();
        File.WriteAllText(_bed.Combine("cutover.yml"), $"""
            app: envapp
            strategy: rolling
            root: {_bed.Root}
            env_file: .env
            run:
              command: node server.js
              instances: 2
              ready: message
              ready_timeout: 10s
            proxy:
              listen: 127.0.0.1:{port}
              drain_timeout: 5s
            rolling:
              monitor: 200ms
            """);
        File.WriteAllText(_bed.Combine(".env"), "API_TOKEN=first-token\n");
        WriteRelease("v1");

        // Nothing live yet, or a source given with it: refused, nothing written.
        var nothingLive = await Cli(null, ["deploy", "--env-only"]);
        Assert.Equal(2, nothingLive.ExitCode);
        Assert.Contains("nothing is live", nothingLive.Stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_bed.Root, ".cutover", "env")));
        Assert.Equal(0, (await Cli(null, ["deploy", _bed.Source])).ExitCode);
        var withSource = await Cli(null, ["deploy", _bed.Source, "--env-only"]);
        Assert.Equal(2, withSource.ExitCode);
        Assert.Equal("first-token", (await GetAsync(port)).Token);

        File.WriteAllText(_bed.Combine(".env"), "API_TOKEN=second-token\n");
        // The source changes too: --env-only must deploy the live release's files, not these.
        WriteRelease("v2-not-deployed");
        IReadOnlyList<Sample> samples;
        await using (var load = new LoadGenerator($"http://127.0.0.1:{port}/", connections: 8, maxDuration: TimeSpan.FromMinutes(1)))
        {
            var again = await Cli(null, ["deploy", "--env-only"]);
            Assert.Equal(0, again.ExitCode);
            Assert.Contains("batch 2/2: done", again.Stdout, StringComparison.Ordinal);
            await Task.Delay(300);
            samples = await load.StopAsync();
        }
        output.WriteLine($"{samples.Count} requests, {samples.Count(s => s.Status != 200)} failed");
        Assert.NotEmpty(samples);
        Assert.Equal(0, samples.Count(s => s.Status != 200));
        Assert.Equal(new Seen("v1", "second-token", null, null, null), await GetAsync(port));

        // A new release (rollback works as for any deploy): back to the first environment.
        Assert.Equal(0, (await Cli(null, ["rollback"])).ExitCode);
        Assert.Equal(new Seen("v1", "first-token", null, null, null), await GetAsync(port));
    }
}
