using System.Net.Sockets;
using System.Text;

namespace Cutover.BlueGreen;

/// <summary>
/// HAProxy's runtime API over its stats socket (`stats socket ... level admin`): one connection per call, commands
/// joined with `;` so HAProxy runs them one after the other in the same CLI session, the answer read to EOF.
/// Nothing here reloads HAProxy.
/// </summary>
public sealed class HaproxyRuntimeApi(string socketPath)
{
    public string SocketPath => socketPath;

    /// <summary>HAProxy's answer to <paramref name="commands"/>, one block per command (each ends with an empty line).</summary>
    public async Task<string> SendAsync(IReadOnlyList<string> commands, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
        await socket.SendAsync(Encoding.ASCII.GetBytes(string.Join(";", commands) + "\n"), SocketFlags.None, cancellationToken);
        var answer = new MemoryStream();
        var buffer = new byte[16384];
        // HAProxy closes the connection after the last command (non-interactive mode), so EOF ends the answer.
        while (await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken) is var read and > 0)
            answer.Write(buffer, 0, read);
        return Encoding.ASCII.GetString(answer.ToArray());
    }

    public Task<string> SendAsync(string command, CancellationToken cancellationToken) => SendAsync([command], cancellationToken);

    /// <summary>`show stat` CSV of <paramref name="backend"/> (the backend line and its servers), by column name.</summary>
    public async Task<IReadOnlyList<IReadOnlyDictionary<string, string>>> ShowStatAsync(string backend, CancellationToken cancellationToken)
    {
        // Type mask 2 (backend) | 4 (servers), every server id.
        var text = await SendAsync($"show stat {backend} 6 -1", cancellationToken);
        return ParseStatCsv(text);
    }

    public static IReadOnlyList<IReadOnlyDictionary<string, string>> ParseStatCsv(string text)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length == 0 || !lines[0].StartsWith("# ")) return [];
        var columns = lines[0][2..].Split(',');
        return lines.Skip(1).Select(line =>
        {
            var cells = line.Split(',');
            var row = new Dictionary<string, string>();
            for (var c = 0; c < columns.Length && c < cells.Length; c++)
                if (columns[c].Length > 0) row[columns[c]] = cells[c];
            return (IReadOnlyDictionary<string, string>)row;
        }).ToList();
    }
}
