using Npgsql;

namespace Cutover.Migrations;

/// <summary>
/// Turns what people keep in DATABASE_URL into an Npgsql connection string: a postgres:// URL
/// (Heroku, Rails, Laravel style) or an Npgsql/libpq key=value string, which passes through.
/// </summary>
public static class DatabaseUrl
{
    public static string ToConnectionString(string text)
    {
        text = text.Trim();
        if (!text.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) && !text.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                return new NpgsqlConnectionStringBuilder(text).ConnectionString;
            }
            catch (ArgumentException e)
            {
                throw new DeployException($"the database URL is neither a postgres:// URL nor a key=value connection string: {e.Message}");
            }
        }
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri))
            throw new DeployException("the database URL is not a valid postgres:// URL");
        var builder = new NpgsqlConnectionStringBuilder();
        if (uri.Host.Length > 0) builder.Host = uri.Host;
        if (!uri.IsDefaultPort && uri.Port > 0) builder.Port = uri.Port;
        if (uri.UserInfo.Length > 0)
        {
            var parts = uri.UserInfo.Split(':', 2);
            builder.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2) builder.Password = Uri.UnescapeDataString(parts[1]);
        }
        var database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        if (database.Length > 0) builder.Database = database;
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            var key = Uri.UnescapeDataString(kv[0]);
            var value = kv.Length == 2 ? Uri.UnescapeDataString(kv[1]) : "";
            try
            {
                builder[key switch { "sslmode" => "SSL Mode", "host" => "Host", "port" => "Port", "user" => "Username", "password" => "Password", "dbname" => "Database", "application_name" => "Application Name", "connect_timeout" => "Timeout", _ => key }] = value;
            }
            catch (ArgumentException)
            {
                throw new DeployException($"the database URL has a parameter '{key}' that PostgreSQL connections do not take");
            }
        }
        return builder.ConnectionString;
    }
}
