using System.Diagnostics;
using Cutover.BlueGreen;
using Cutover.Config;
using Cutover.Progress;
using Cutover.Supervisor;
using Cutover.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cutover.Tests.Rolling;

/// <summary>`router: nginx` with a real nginx: the upstream follows each switch; a failing `nginx -t` restores the file.</summary>
[Collection(Serial.Name)]
[Trait(Needs.Trait, Needs.Nginx)]
public class NginxRouterTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly HttpClient _http = new();
    private Process? _nginx;

    public void Dispose()
    {
        if (_nginx is { HasExited: false }) { _nginx.Kill(entireProcessTree: true); _nginx.WaitForExit(); }
        _nginx?.Dispose();
        _http.Dispose();
        _dir.Dispose();
    }

    private string Release(string version, string? behavior = null) => AppFactory.NodeRelease(_dir.Path, version, behavior);

    [Fact]
    public async Task The_upstream_follows_each_switch_and_a_failing_test_restores_the_previous_file()
    {
        var nginxDir = _dir.Combine("nginx");
        Directory.CreateDirectory(Path.Combine(nginxDir, "logs"));
        var port = HealthServer.FreePort();
        var upstream = Path.Combine(nginxDir, "upstream.conf");
        var extra = Path.Combine(nginxDir, "extra.conf");
        File.WriteAllText(extra, "# an include the test breaks later\n");
        var conf = Path.Combine(nginxDir, "nginx.conf");
        File.WriteAllText(conf, $$"""
            {{(Environment.UserName == "root" ? "user root root;" : "")}}
            worker_processes 1;
            pid {{nginxDir}}/nginx.pid;
            error_log {{nginxDir}}/logs/error.log warn;
            events { worker_connections 256; }
            http {
              access_log off;
              client_body_temp_path {{nginxDir}}/body; proxy_temp_path {{nginxDir}}/proxy;
              fastcgi_temp_path {{nginxDir}}/fcgi; uwsgi_temp_path {{nginxDir}}/uwsgi; scgi_temp_path {{nginxDir}}/scgi;
              include {{upstream}};
              include {{extra}};
              server {
                listen 127.0.0.1:{{port}};
                location / { proxy_pass http://app_backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
              }
            }
            """);
        var nginxCmd = $"/usr/sbin/nginx -p {nginxDir} -c {conf}";
        var config = ConfigLoader.Parse($"""
            app: routed
            strategy: blue-green
            root: {_dir.Path}
            run:
              command: node server.js
              instances: 2
              ready: message
            proxy:
              listen: 127.0.0.1:{HealthServer.FreePort()}
            blue_green:
              monitor: 0s
            router: nginx
            nginx:
              upstream_file: {upstream}
              upstream_name: app_backend
              test: {nginxCmd} -t
              reload: {nginxCmd} -s reload
            """, _dir.Combine("cutover.yml"));
        await using var app = await AppRuntime.CreateAsync(config, _dir.Path, _http, new object(), NullLoggerFactory.Instance, CancellationToken.None);
        Assert.Null(await app.StartAllAsync("v1", Release("1"), CancellationToken.None));
        var bg = new BlueGreenSwitch(app, new WarmSetKeeper(), new SilentProgress());
        // nginx needs the upstream file to start; the first route writes it (and its reload fails harmlessly: no nginx yet)
        await bg.RouteLiveSetAsync(CancellationToken.None);
        File.WriteAllText(upstream, new NginxRouter(config.SettingsOf<BlueGreenSettings>().BlueGreen.Nginx!).Render(app.Slots.Select(s => s!.Endpoint!)));
        _nginx = Process.Start(new ProcessStartInfo("/usr/sbin/nginx", ["-p", nginxDir, "-c", conf, "-g", "daemon off;"]) { UseShellExecute = false })!;
        var url = $"http://127.0.0.1:{port}/";
        Assert.StartsWith("hello from 1", await Eventually(url, "hello from 1"));

        Assert.Null(await bg.RunAsync("v2", Release("2"), CancellationToken.None));
        Assert.StartsWith("hello from 2", await Eventually(url, "hello from 2"));
        foreach (var s in app.Slots) Assert.Contains($"server 127.0.0.1:{s!.Spec.Port};", File.ReadAllText(upstream));
        var good = File.ReadAllText(upstream);

        File.WriteAllText(extra, "this is not nginx syntax {\n");
        var error = await bg.RunAsync("v3", Release("3"), CancellationToken.None);
        Assert.NotNull(error);
        Assert.Contains("-t` failed", error);
        Assert.Contains("restored", error);
        Assert.Equal(good, File.ReadAllText(upstream));
        Assert.Equal("v2", app.ReleaseId);
        for (var i = 0; i < 20; i++) Assert.StartsWith("hello from 2", await _http.GetStringAsync(url));
    }

    private async Task<string> Eventually(string url, string expected)
    {
        var last = "";
        await Wait.WithinAsync(async () =>
        {
            try
            {
                last = await _http.GetStringAsync(url);
            }
            catch (HttpRequestException e)
            {
                last = e.Message;
            }
            return last.StartsWith(expected);
        }, TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(100));
        return last;
    }
}
