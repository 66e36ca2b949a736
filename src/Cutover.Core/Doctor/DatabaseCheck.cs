using Cutover.Config;
using Cutover.Deploy;
using Cutover.Migrations;
using Npgsql;

namespace Cutover.Doctor;

/// <summary>
/// migrations.database_url_env set and the database answering, and migrations.pg_version (which the linter judges
/// statements by) the server's major version.
/// </summary>
public sealed class DatabaseCheck(MigrationsConfig migrations, Func<string, string?> environment) : IDoctorCheck
{
    public string Name => "database";

    public async Task<DoctorFinding> RunAsync(CancellationToken cancellationToken)
    {
        var variable = migrations.DatabaseUrlEnv;
        if (environment(variable) is not { Length: > 0 } url)
            return DoctorFinding.Error(Name, $"{variable} is not set", $"export {variable}=postgres://user:password@host/database where cutover deploy runs");
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(DatabaseUrl.ToConnectionString(url)) { Timeout = 5, Pooling = false };
        }
        catch (DeployException e)
        {
            return DoctorFinding.Error(Name, $"{variable}: {e.Message}", $"set {variable} to a postgres:// URL");
        }
        var where = $"{builder.Host}:{builder.Port}/{builder.Database}";
        int serverVersion;
        try
        {
            await using var connection = new NpgsqlConnection(builder.ConnectionString);
            await connection.OpenAsync(cancellationToken);
            await using var command = new NpgsqlCommand("SHOW server_version_num", connection);
            serverVersion = int.Parse((string)(await command.ExecuteScalarAsync(cancellationToken))!) / 10000;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            return DoctorFinding.Error(Name, $"{variable} ({where}) is unreachable: {e.Message}",
                "check that PostgreSQL runs there and accepts this machine (listen_addresses, pg_hba.conf, password)");
        }
        if (serverVersion != migrations.PgVersion)
            return DoctorFinding.Warning(Name, $"{where} is PostgreSQL {serverVersion}, migrations.pg_version is {migrations.PgVersion}: lint judges locks for the wrong version",
                $"set migrations.pg_version: {serverVersion}");
        return DoctorFinding.Ok(Name, $"{where} answers, PostgreSQL {serverVersion} as pg_version says");
    }
}
