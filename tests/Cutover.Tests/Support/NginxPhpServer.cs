using System.Diagnostics;
using System.Net.Sockets;

namespace Cutover.Tests.Support;

/// <summary>
/// Real nginx and php-fpm (Debian packages) on loopback, configured in a temp dir, serving
/// <c>root/current/public</c> the way the README recommends: <c>$realpath_root</c>, no php-fpm reload.
/// Started and stopped by pid.
/// </summary>
public sealed class NginxPhpServer : IDisposable
{
    private readonly TempDir _dir = new("cutover-nginx-");
    private readonly List<Process> _processes = [];

    public NginxPhpServer(string deployRoot)
    {
        Port = HealthServer.FreePort();
        var nginx = Find("/usr/sbin/nginx");
        var fpm = Directory.Exists("/usr/sbin") ? Directory.GetFiles("/usr/sbin", "php-fpm*").Order().LastOrDefault() : null;
        if (nginx is null || fpm is null)
            throw new InvalidOperationException("nginx and php-fpm are needed (apt-get install nginx-light php-fpm); ./test.sh installs them");

        var d = _dir.Path;
        foreach (var sub in new[] { "tmp", "logs" }) Directory.CreateDirectory(Path.Combine(d, sub));
        var asRoot = Environment.UserName == "root";
        File.WriteAllText(Path.Combine(d, "php-fpm.conf"), $"""
            [global]
            error_log = {d}/logs/php-fpm.log
            daemonize = no
            [www]
            {(asRoot ? "user = root\ngroup = root" : "")}
            listen = {d}/php-fpm.sock
            pm = static
            pm.max_children = 8
            catch_workers_output = yes
            """);
        File.WriteAllText(Path.Combine(d, "nginx.conf"), $$"""
            {{(asRoot ? "user root root;" : "")}}
            worker_processes 2;
            pid {{d}}/nginx.pid;
            error_log {{d}}/logs/error.log warn;
            events { worker_connections 1024; }
            http {
              access_log off;
              keepalive_requests 1000000;
              keepalive_timeout 75s;
              client_body_temp_path {{d}}/tmp/body;
              fastcgi_temp_path {{d}}/tmp/fastcgi;
              proxy_temp_path {{d}}/tmp/proxy;
              uwsgi_temp_path {{d}}/tmp/uwsgi;
              scgi_temp_path {{d}}/tmp/scgi;
              server {
                listen 127.0.0.1:{{Port}};
                root {{deployRoot}}/current/public;
                index index.php;
                location ~ \.php$ {
                  try_files $uri =404;
                  include /etc/nginx/fastcgi_params;
                  fastcgi_param SCRIPT_FILENAME $realpath_root$fastcgi_script_name;
                  fastcgi_param DOCUMENT_ROOT $realpath_root;
                  fastcgi_pass unix:{{d}}/php-fpm.sock;
                }
              }
            }
            """);
        Start(fpm, "-F", "-R", "-y", Path.Combine(d, "php-fpm.conf"), "-p", d);
        Start(nginx, "-p", d, "-c", Path.Combine(d, "nginx.conf"), "-g", "daemon off;");
        WaitForPort();
    }

    public int Port { get; }
    public string BaseUrl => $"http://127.0.0.1:{Port}";

    private void Start(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in args) start.ArgumentList.Add(a);
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _processes.Add(process);
    }

    private void WaitForPort()
    {
        var started = Wait.Within(() =>
        {
            if (_processes.FirstOrDefault(p => p.HasExited) is { } dead)
                throw new InvalidOperationException($"{dead.StartInfo.FileName} exited with {dead.ExitCode}; logs in {_dir.Path}/logs: " + Logs());
            try
            {
                using var client = new TcpClient();
                client.Connect("127.0.0.1", Port);
                return File.Exists(Path.Combine(_dir.Path, "php-fpm.sock"));
            }
            catch (SocketException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(20));
        if (!started) throw new TimeoutException("nginx or php-fpm did not start: " + Logs());
    }

    public string Logs() => string.Join("\n", Directory.GetFiles(Path.Combine(_dir.Path, "logs")).Select(f => $"--- {f}\n{File.ReadAllText(f)}"));

    private static string? Find(string path) => File.Exists(path) ? path : null;

    public void Dispose()
    {
        foreach (var process in Enumerable.Reverse(_processes))
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    process.WaitForExit(10_000);
                }
            }
            catch (InvalidOperationException)
            {
            }
            process.Dispose();
        }
        _dir.Dispose();
    }
}
