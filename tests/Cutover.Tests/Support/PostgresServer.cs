using System.Diagnostics;
using Npgsql;

namespace Cutover.Tests.Support;

/// <summary>
/// A real PostgreSQL (Debian's postgresql package): initdb in a temp dir, the server on a free loopback port,
/// stopped by pid (SIGINT, PostgreSQL's fast shutdown). As root, both run as the postgres user through setpriv,
/// because initdb refuses root.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    private readonly string _dir;
    private readonly Process _server;
    private int _databases;

    private PostgresServer(Process server, int port, string dir)
    {
        _server = server;
        Port = port;
        _dir = dir;
    }

    public int Port { get; }
    public string Admin => ConnectionString("postgres");

    public string ConnectionString(string database) => $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Pooling=false";

    public static async Task<PostgresServer> StartAsync()
    {
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb"))).OrderBy(d => d.Length).ThenBy(d => d).LastOrDefault()
            : null;
        if (bin is null) throw new InvalidOperationException("PostgreSQL server binaries are needed (apt-get install postgresql); ./test.sh installs them");
        var dir = Directory.CreateTempSubdirectory("cutover-pg-").FullName;
        var asRoot = Environment.UserName == "root";
        if (asRoot) await RunAsync("chown", "postgres:postgres", dir);
        var data = Path.Combine(dir, "data");
        await RunAsync(AsPostgres(asRoot, Path.Combine(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"));
        var port = HealthServer.FreePort();
        var start = StartInfo(AsPostgres(asRoot, Path.Combine(bin, "postgres"), "-D", data, "-p", port.ToString(), "-k", dir,
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"));
        var server = Process.Start(start)!;
        server.OutputDataReceived += (_, _) => { };
        server.ErrorDataReceived += (_, _) => { };
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        var pg = new PostgresServer(server, port, dir);
        await Wait.UntilAsync(async () =>
        {
            try
            {
                await using var connection = new NpgsqlConnection(pg.Admin);
                await connection.OpenAsync();
                return true;
            }
            catch (NpgsqlException) when (!server.HasExited)
            {
                return false; // still starting; a server that exited lets the error through
            }
        }, TimeSpan.FromSeconds(30), $"PostgreSQL to accept connections on port {port}", TimeSpan.FromMilliseconds(100));
        return pg;
    }

    /// <summary>A fresh, empty database, so tests sharing one server never see each other's tables.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = $"t{Interlocked.Increment(ref _databases)}";
        await ExecuteAsync(Admin, $"CREATE DATABASE {name}");
        return ConnectionString(name);
    }

    public static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    public static async Task<T> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync())!;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_server.HasExited)
        {
            Cutover.Platform.LibC.Kill(_server.Id, 2);
            if (!_server.WaitForExit(10_000)) _server.Kill();
        }
        _server.Dispose();
        await Task.Yield();
        try { Cutover.Releases.ReleaseStore.DeleteTree(_dir); } catch (IOException) { }
    }

    private static string[] AsPostgres(bool asRoot, params string[] command) =>
        asRoot ? ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", .. command] : command;

    private static ProcessStartInfo StartInfo(string[] command)
    {
        var start = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in command[1..]) start.ArgumentList.Add(arg);
        return start;
    }

    private static Task RunAsync(params string[] command) => RunAsync(command.AsEnumerable());

    private static async Task RunAsync(IEnumerable<string> command)
    {
        var array = command.ToArray();
        using var process = Process.Start(StartInfo(array))!;
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{string.Join(' ', array)} failed ({process.ExitCode}): {await stderr}");
    }
}
