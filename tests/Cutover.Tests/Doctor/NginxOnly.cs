using System.Diagnostics;
using System.Net.Sockets;
using Cutover.Tests.Support;

namespace Cutover.Tests.Doctor;

/// <summary>
/// A real nginx master (no php-fpm: doctor reads the config, it sends no request) serving
/// <c>root/current/public</c> with PHP passed to FastCGI by the given SCRIPT_FILENAME and DOCUMENT_ROOT. Stopped by pid.
/// </summary>
public sealed class NginxOnly : IDisposable
{
    private readonly TempDir _dir = new("cutover-doctor-nginx-");
    private readonly Process _nginx;

    public NginxOnly(string deployRoot, string scriptFilename, string? documentRoot)
    {
        Port = HealthServer.FreePort();
        var d = _dir.Path;
        Directory.CreateDirectory(Path.Combine(d, "logs"));
        Directory.CreateDirectory(Path.Combine(d, "tmp"));
        File.WriteAllText(Path.Combine(d, "nginx.conf"), $$"""
            {{(Environment.UserName == "root" ? "user root root;" : "")}}
            worker_processes 1;
            pid {{d}}/nginx.pid;
            error_log {{d}}/logs/error.log warn;
            events { worker_connections 64; }
            http {
              access_log off;
              client_body_temp_path {{d}}/tmp/body;
              fastcgi_temp_path {{d}}/tmp/fastcgi;
              proxy_temp_path {{d}}/tmp/proxy;
              uwsgi_temp_path {{d}}/tmp/uwsgi;
              scgi_temp_path {{d}}/tmp/scgi;
              server {
                listen 127.0.0.1:{{Port}};
                server_name doctor.test;
                root {{deployRoot}}/current/public;
                location ~ \.php$ {
                  include /etc/nginx/fastcgi_params;
                  fastcgi_param SCRIPT_FILENAME {{scriptFilename}}$fastcgi_script_name;
                  {{(documentRoot is null ? "" : $"fastcgi_param DOCUMENT_ROOT {documentRoot};")}}
                  fastcgi_pass unix:{{d}}/php-fpm.sock;
                }
              }
            }
            """);
        var start = new ProcessStartInfo("/usr/sbin/nginx") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[] { "-p", d, "-c", Path.Combine(d, "nginx.conf"), "-g", "daemon off;" }) start.ArgumentList.Add(arg);
        _nginx = Process.Start(start)!;
        _nginx.OutputDataReceived += (_, _) => { };
        _nginx.ErrorDataReceived += (_, _) => { };
        _nginx.BeginOutputReadLine();
        _nginx.BeginErrorReadLine();
        // Listening means the master has renamed itself "nginx: master process ...", which doctor looks for.
        Wait.Until(() =>
        {
            if (_nginx.HasExited) throw new InvalidOperationException($"nginx exited with {_nginx.ExitCode}: {File.ReadAllText(Path.Combine(d, "logs", "error.log"))}");
            try
            {
                using var client = new TcpClient();
                client.Connect("127.0.0.1", Port);
                return true;
            }
            catch (SocketException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(20), "nginx listening");
    }

    public int Port { get; }
    public int Pid => _nginx.Id;

    public void Dispose()
    {
        try
        {
            if (!_nginx.HasExited)
            {
                _nginx.Kill(entireProcessTree: true);
                _nginx.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
        }
        _nginx.Dispose();
        _dir.Dispose();
    }
}
