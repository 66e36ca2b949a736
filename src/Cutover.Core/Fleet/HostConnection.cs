using System.Net.Sockets;
using Cutover.Config;
using Renci.SshNet;
using Renci.SshNet.Common;

namespace Cutover.Fleet;

/// <summary>A fleet host that failed or stopped answering; the message always names it.</summary>
public class HostException(FleetHost host, string message, Exception? inner = null) : DeployException($"{host.Name}: {message}", inner)
{
    public FleetHost Host { get; } = host;
    public string Reason { get; } = message;
    /// <summary>The host's root is locked by another deploy or rollback there (exit code 3, like a local deploy).</summary>
    public bool Locked { get; init; }
    /// <summary>The host refused what was asked (its root belongs to something else): bad input, exit 2.</summary>
    public bool BadInput { get; init; }
}

/// <summary>The host's key was not in known_hosts, or differs from the one recorded there.</summary>
public sealed class HostKeyException(FleetHost host, string message) : HostException(host, message);

public sealed record RemoteCommandResult(int ExitStatus, string Stdout, string Stderr);

/// <summary>
/// One SSH connection (and its SFTP channel) to a fleet host, through SSH.NET, with the host key checked against
/// known_hosts before anything is sent. Every failure becomes a <see cref="HostException"/> naming the host.
/// </summary>
public sealed class HostConnection : IDisposable
{
    private readonly SshClient _ssh;
    private readonly SftpClient _sftp;
    private readonly SemaphoreSlim _sftpConnect = new(1, 1);

    private HostConnection(FleetHost host, SshClient ssh, SftpClient sftp, string home)
    {
        Host = host;
        _ssh = ssh;
        _sftp = sftp;
        Home = home;
    }

    public FleetHost Host { get; }

    /// <summary>The remote user's $HOME, so every later path can be absolute.</summary>
    public string Home { get; }

    public static async Task<HostConnection> ConnectAsync(FleetHost host, SshSettings settings, KnownHosts knownHosts, bool acceptNewKeys,
        Action<string>? onNewKey, CancellationToken cancellationToken)
    {
        var keyFile = settings.Key ?? DefaultKey()
            ?? throw new HostException(host, "no SSH key: set ssh.key, or create ~/.ssh/id_ed25519");
        PrivateKeyFile key;
        try
        {
            key = new PrivateKeyFile(keyFile);
        }
        catch (Exception e) when (e is IOException or SshException or UnauthorizedAccessException)
        {
            throw new HostException(host, $"cannot read the SSH key {keyFile}: {e.Message}");
        }

        string? refusal = null;
        void Verify(object? sender, HostKeyEventArgs e)
        {
            var fingerprint = KnownHosts.Fingerprint(e.HostKey);
            switch (knownHosts.Check(host.Address, host.Port, e.HostKeyName, e.HostKey))
            {
                case HostKeyVerdict.Known:
                    e.CanTrust = true;
                    return;
                case HostKeyVerdict.Changed:
                    // Never accepted, not even with --accept-new-host-keys: this is what an attacker in the middle looks like.
                    refusal = $"the host key CHANGED: the server offers {e.HostKeyName} {fingerprint}, but {knownHosts.Path} records a different " +
                              $"{e.HostKeyName} key for {KnownHosts.HostPattern(host.Address, host.Port)}. If the server was really reinstalled, remove the old " +
                              $"entry (ssh-keygen -R '{KnownHosts.HostPattern(host.Address, host.Port)}' -f {knownHosts.Path}) and check the new fingerprint";
                    e.CanTrust = false;
                    return;
                default:
                    if (acceptNewKeys)
                    {
                        knownHosts.Add(host.Address, host.Port, e.HostKeyName, e.HostKey);
                        onNewKey?.Invoke($"recorded the new host key {e.HostKeyName} {fingerprint} in {knownHosts.Path}");
                        e.CanTrust = true;
                        return;
                    }
                    refusal = $"unknown host key {e.HostKeyName} {fingerprint}: {KnownHosts.HostPattern(host.Address, host.Port)} is not in {knownHosts.Path}. " +
                              "Check the fingerprint (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the server), then pass --accept-new-host-keys to record it";
                    e.CanTrust = false;
                    return;
            }
        }

        ConnectionInfo Info() => new(host.Address, host.Port, host.User, new PrivateKeyAuthenticationMethod(host.User, key)) { Timeout = settings.ConnectTimeout };
        var ssh = new SshClient(Info()) { KeepAliveInterval = TimeSpan.FromSeconds(5) };
        var sftp = new SftpClient(Info()) { KeepAliveInterval = TimeSpan.FromSeconds(5) };
        ssh.HostKeyReceived += Verify;
        sftp.HostKeyReceived += Verify;
        try
        {
            // SFTP connects on the first upload (its own SSH connection, same host key check): status, releases and
            // a deploy whose files the host already has never pay for a second handshake.
            await ssh.ConnectAsync(cancellationToken);
            using var home = ssh.RunCommand("printf %s \"$HOME\"");
            if (home.ExitStatus != 0 || !home.Result.StartsWith('/'))
                throw new HostException(host, $"could not read $HOME on the host: {home.Error.Trim()}");
            return new HostConnection(host, ssh, sftp, home.Result);
        }
        catch (Exception e) when (refusal is not null && e is SshConnectionException)
        {
            ssh.Dispose();
            sftp.Dispose();
            throw new HostKeyException(host, refusal);
        }
        catch (Exception e) when (IsConnectionFailure(e))
        {
            ssh.Dispose();
            sftp.Dispose();
            throw new HostException(host, $"cannot connect as {host.User} on port {host.Port}: {e.Message}", e);
        }
        catch
        {
            ssh.Dispose();
            sftp.Dispose();
            throw;
        }
    }

    public static bool IsConnectionFailure(Exception e) =>
        e is SshException or SocketException or IOException or ObjectDisposedException or TimeoutException or InvalidOperationException;

    /// <summary>Runs a shell command line on the host and collects its output.</summary>
    public async Task<RemoteCommandResult> RunAsync(string commandLine, CancellationToken cancellationToken)
    {
        try
        {
            using var command = _ssh.CreateCommand(commandLine);
            await command.ExecuteAsync(cancellationToken);
            return new RemoteCommandResult(command.ExitStatus ?? -1, command.Result, command.Error);
        }
        catch (Exception e) when (IsConnectionFailure(e))
        {
            throw Lost(e);
        }
    }

    /// <summary>Runs a command and fails, naming the host and the command's stderr, unless it exits 0.</summary>
    /// <summary>
    /// Runs a command and hands over each line of its stdout (<c>false</c>) and stderr (<c>true</c>) as it arrives;
    /// the exit status at the end (128+n for a signal, as a shell reports it). Cancelling closes the channel: the
    /// remote command sees its stdin end (logs -f stops on that) and its next write fail.
    /// </summary>
    /// <param name="keepInputOpen">True: stdin stays open until the end (a follow that stops on its EOF); false: it ends at once, as `ssh -n`.</param>
    public async Task<int> StreamAsync(string commandLine, Action<bool, string> onLine, bool keepInputOpen, CancellationToken cancellationToken)
    {
        try
        {
            using var command = _ssh.CreateCommand(commandLine);
            var running = command.ExecuteAsync(CancellationToken.None);
            // Opened and left open: the remote command's stdin ends when this channel closes, not before.
            await using var input = command.CreateInputStream();
            if (!keepInputOpen) await input.DisposeAsync();
            var stdout = Task.Run(() => Pump(command.OutputStream, line => onLine(false, line)), CancellationToken.None);
            var stderr = Task.Run(() => Pump(command.ExtendedOutputStream, line => onLine(true, line)), CancellationToken.None);
            try
            {
                await running.WaitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // Ctrl-C: close stdin (the remote follow ends on EOF), then the channel itself if it lingers.
                await input.DisposeAsync();
                await Task.WhenAny(running, Task.Delay(TimeSpan.FromSeconds(2), CancellationToken.None));
                throw;
            }
            await Task.WhenAll(stdout, stderr).WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
            return command.ExitStatus ?? (command.ExitSignal is { } signal ? 128 + SignalNumber(signal) : -1);
        }
        catch (Exception e) when (IsConnectionFailure(e))
        {
            throw Lost(e);
        }

        static void Pump(Stream stream, Action<string> onLine)
        {
            using var reader = new StreamReader(stream, System.Text.Encoding.UTF8);
            while (reader.ReadLine() is { } line) onLine(line);
        }
    }

    /// <summary>An SSH exit-signal name (RFC 4254 6.10: "TERM", "KILL", ...) as its number on Linux.</summary>
    private static int SignalNumber(string name) => name switch
    {
        "HUP" => 1, "INT" => 2, "QUIT" => 3, "ILL" => 4, "ABRT" => 6, "FPE" => 8, "KILL" => 9, "SEGV" => 11, "PIPE" => 13, "ALRM" => 14, "TERM" => 15,
        "USR1" => 10, "USR2" => 12,
        _ => 0,
    };

    public async Task<string> RunCheckedAsync(string commandLine, string what, CancellationToken cancellationToken)
    {
        var result = await RunAsync(commandLine, cancellationToken);
        if (result.ExitStatus != 0)
            throw new HostException(Host, $"{what} failed (exit {result.ExitStatus}): {FirstLines(result.Stderr.Length > 0 ? result.Stderr : result.Stdout)}");
        return result.Stdout;
    }

    /// <summary>Uploads a stream to an absolute path over SFTP, replacing what is there.</summary>
    public async Task UploadAsync(Stream content, string remotePath, CancellationToken cancellationToken)
    {
        try
        {
            if (!_sftp.IsConnected)
            {
                await _sftpConnect.WaitAsync(cancellationToken);
                try
                {
                    if (!_sftp.IsConnected) await _sftp.ConnectAsync(cancellationToken);
                }
                finally
                {
                    _sftpConnect.Release();
                }
            }
            await Task.Run(() => _sftp.UploadFile(content, remotePath, canOverride: true), cancellationToken);
        }
        catch (Exception e) when (IsConnectionFailure(e))
        {
            throw Lost(e);
        }
    }

    /// <summary>
    /// Writes a small file atomically through the SSH channel itself (cat into a temp name, then rename), so writing
    /// a config or a manifest needs no SFTP connection.
    /// </summary>
    /// <param name="ownerOnly">Created 0600 (umask 077 before cat), never readable by others even for a moment: secrets.</param>
    public async Task WriteFileAsync(string remotePath, byte[] content, CancellationToken cancellationToken, bool ownerOnly = false)
    {
        var dir = remotePath[..remotePath.LastIndexOf('/')];
        var temp = $"{dir}/.{Path.GetFileName(remotePath)}.{Guid.NewGuid():N}.tmp";
        try
        {
            using var command = _ssh.CreateCommand($"{(ownerOnly ? "umask 077 && " : "")}mkdir -p {Quote(dir)} && cat > {Quote(temp)} && mv -f {Quote(temp)} {Quote(remotePath)}");
            var running = command.ExecuteAsync(cancellationToken);
            await using (var input = command.CreateInputStream())
                await input.WriteAsync(content, cancellationToken);
            await running;
            if (command.ExitStatus != 0)
                throw new HostException(Host, $"writing {remotePath} failed (exit {command.ExitStatus}): {FirstLines(command.Error)}");
        }
        catch (Exception e) when (IsConnectionFailure(e))
        {
            throw Lost(e);
        }
    }

    /// <summary>Starts a long-running command whose stdin and stdout stay open: the remote session.</summary>
    public RemoteSessionClient StartSession(string commandLine, Progress.IDeployProgress progress)
    {
        try
        {
            return new RemoteSessionClient(this, _ssh.CreateCommand(commandLine), progress);
        }
        catch (Exception e) when (IsConnectionFailure(e))
        {
            throw Lost(e);
        }
    }

    internal HostException Lost(Exception e) =>
        e is HostException h ? h : new HostException(Host, $"stopped answering (connection lost: {e.Message})", e);

    public static string Quote(string text) => "'" + text.Replace("'", "'\\''") + "'";

    internal static string FirstLines(string text)
    {
        var lines = text.Trim().Split('\n').Select(l => l.TrimEnd()).Where(l => l.Length > 0).TakeLast(5).ToArray();
        return lines.Length == 0 ? "(no output)" : string.Join(" | ", lines);
    }

    private static string? DefaultKey()
    {
        var dir = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".ssh");
        return new[] { "id_ed25519", "id_ecdsa", "id_rsa" }.Select(n => Path.Combine(dir, n)).FirstOrDefault(File.Exists);
    }

    public void Dispose()
    {
        _sftp.Dispose();
        _ssh.Dispose();
    }
}
