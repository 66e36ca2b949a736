using System.Net.Sockets;
using System.Text;
using Cutover.Agent;
using Cutover.Deploy;
using Cutover.Progress;
using Cutover.Tests.Support;

namespace Cutover.Tests.Rolling;

/// <summary>
/// The CLI's side of the agent's socket when the other end says something it cannot read. The real agent cannot be
/// made to misbehave, so a peer on a real Unix socket answers one HTTP request with fixed bytes; the client under
/// test is the real AgentClient, over its own HTTP/1.1 (AgentSocketHttp). (The real agent's answers are read in AgentTests.)
/// </summary>
public class AgentWireTests : IDisposable
{
    private readonly TempDir _dir = new();
    private AgentHome Home => new(_dir.Path);

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task The_activate_stream_replays_progress_and_returns_the_typed_result()
    {
        var written = new StringWriter();
        var agent = new JsonProgress(written);
        agent.PhaseStarted("rolling");
        agent.Info("instance shop-0 ready on release r2");
        agent.Result(new ActivationResultEvent(ActivationResult.Live));
        await using var peer = AnsweringPeer.Start(Home.Socket, 200, "application/x-ndjson", written.ToString());
        using var client = new AgentClient(Home);
        var replayed = new StringWriter();

        var result = await client.ActivateAsync("/etc/shop.yml", "shop", "r2", "/srv/shop/releases/r2", new JsonProgress(replayed), CancellationToken.None);

        Assert.Equal(ActivationOutcome.Live, result.Outcome);
        Assert.Equal(written.ToString().Split('\n')[..2], replayed.ToString().Split('\n')[..2]);
    }

    /// <summary>
    /// A deploy's and a rollback's activation is one request: the CLI used to ask GET /v1/apps first whether the agent ran,
    /// a round trip (and the agent's whole app list) on the way to every switch. The peer answers one request only, so a
    /// request before the activate would take its answer and leave the activate unanswered.
    /// </summary>
    [Fact]
    public async Task An_activation_through_a_running_agent_is_the_activate_request_alone()
    {
        var written = new StringWriter();
        new JsonProgress(written).Result(new ActivationResultEvent(ActivationResult.Live));
        await using var peer = AnsweringPeer.Start(Home.Socket, 200, "application/x-ndjson", written.ToString());
        using var client = new AgentClient(Home);
        var activator = new AgentActivator(client, "/etc/shop.yml", "shop", ["/bin/false"]);

        var result = await activator.ActivateAsync("r2", "/srv/shop/releases/r2", new SilentProgress(), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Equal(ActivationOutcome.Live, result.Outcome);
        Assert.StartsWith("POST /v1/apps/shop/activate HTTP/1.1\r\n", await peer.Request);
    }

    /// <summary>
    /// With no request of its own first, the activate request is what finds a dead agent: the socket file a SIGKILLed agent
    /// leaves refuses the connection, nothing was sent, so the agent is started and the request goes to it.
    /// </summary>
    [Fact]
    [Trait(Needs.Trait, Needs.Slow)]
    public async Task A_deploy_that_finds_only_a_dead_agent_s_socket_starts_an_agent_and_deploys()
    {
        using var bed = new AgentBed();
        var port = HealthServer.FreePort();
        var config = bed.WriteNodeConfig(port, "blue-green");
        bed.WriteVersion("1");
        Directory.CreateDirectory(bed.Home);
        var socket = new AgentHome(bed.Home).Socket;
        using (var dead = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            // Bound elsewhere and renamed into place: .NET unlinks the path it bound when the socket is disposed, and a
            // killed agent's socket file stays.
            dead.Bind(new UnixDomainSocketEndPoint(socket + ".bound"));
            File.Move(socket + ".bound", socket);
        }
        Assert.True(File.Exists(socket));

        var deploy = await bed.Cli("deploy", bed.Source, "-c", config);

        Assert.True(deploy.ExitCode == 0, deploy.All);
        Assert.Contains("started the agent in the background", deploy.Stdout);
        using var http = new HttpClient();
        Assert.StartsWith("hello from 1", await http.GetStringAsync($"http://127.0.0.1:{port}/"));
    }

    /// <summary>Such a line once threw a bare JsonException (not JSON) or was skipped (an unknown event).</summary>
    [Theory]
    [InlineData("agent: out of memory")]
    [InlineData("""{"event":"progress","percent":40}""")]
    [InlineData("""{"event":"result","outcome":"live"}""")]
    public async Task A_line_from_the_agent_that_is_neither_progress_nor_a_result_is_an_error_naming_the_agent(string line)
    {
        await using var peer = AnsweringPeer.Start(Home.Socket, 200, "application/x-ndjson", """{"event":"phase_started","phase":"rolling"}""" + "\n" + line + "\n");
        using var client = new AgentClient(Home);

        var error = await Assert.ThrowsAsync<DeployException>(() =>
            client.ActivateAsync("/etc/shop.yml", "shop", "r2", "/srv/shop/releases/r2", new SilentProgress(), CancellationToken.None));

        Assert.StartsWith($"the agent ({Home.Socket}) sent a line that is not a progress event or a result (", error.Message);
        Assert.EndsWith(line, error.Message);
    }

    [Fact]
    public async Task Stop_reads_the_agent_s_answer_or_its_refusal_and_names_an_answer_it_cannot_read()
    {
        using var client = new AgentClient(Home);
        await using (AnsweringPeer.Start(Home.Socket, 200, "application/json", """{"stopped":"shop"}"""))
            Assert.Null(await client.StopAppAsync("shop", CancellationToken.None));
        await using (AnsweringPeer.Start(Home.Socket, 404, "application/json", """{"error":"the agent runs no app 'shop'"}"""))
            Assert.Equal("the agent runs no app 'shop'", await client.StopAppAsync("shop", CancellationToken.None));
        await using (AnsweringPeer.Start(Home.Socket, 200, "application/json", """{"halted":"shop"}"""))
        {
            var error = await Assert.ThrowsAsync<DeployException>(() => client.StopAppAsync("shop", CancellationToken.None));
            Assert.StartsWith($"the agent ({Home.Socket}) answered POST /v1/apps/shop/stop with something Cutover cannot read (", error.Message);
            Assert.EndsWith("""{"halted":"shop"}""", error.Message);
        }
    }

    [Fact]
    public async Task Apps_reads_the_agent_s_answer_whole_or_names_it()
    {
        using var client = new AgentClient(Home);
        await using (AnsweringPeer.Start(Home.Socket, 200, "application/json", "[]"))
            Assert.Empty(await client.AppsAsync(CancellationToken.None));
        await using (AnsweringPeer.Start(Home.Socket, 200, "application/json", """[{"app":"shop"}]"""))
        {
            var error = await Assert.ThrowsAsync<DeployException>(() => client.AppsAsync(CancellationToken.None));
            Assert.StartsWith($"the agent ({Home.Socket}) answered GET /v1/apps with something Cutover cannot read (", error.Message);
        }
    }

    /// <summary>
    /// The client's own HTTP/1.1 (AgentSocketHttp, not HttpClient: issue 14's start-up) reads both framings Kestrel uses,
    /// sends what the agent's endpoints expect, and never takes a malformed or cut-short answer for a short one: each is
    /// the error type the callers handle (HttpRequestException for a buffered answer, an IOException mid-stream).
    /// </summary>
    [Fact]
    public async Task The_client_reads_chunked_and_sized_answers_and_refuses_cut_short_or_malformed_ones()
    {
        using var client = new AgentClient(Home);
        var chunked = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n[\r\n1;ext=1\r\n]\r\n0\r\nX-Trailer: 1\r\n\r\n";
        await using (var peer = AnsweringPeer.StartRaw(Home.Socket, chunked))
        {
            Assert.Empty(await client.AppsAsync(CancellationToken.None));
            Assert.StartsWith("GET /v1/apps HTTP/1.1\r\nHost: agent\r\n", await peer.Request);
        }
        await using (var peer = AnsweringPeer.Start(Home.Socket, 200, "application/json", """{"app":"shop","maintenance":true}"""))
        {
            var set = await client.SetMaintenanceAsync("shop", new MaintenanceRequest(true), CancellationToken.None);
            Assert.True(set.Maintenance);
            var request = await peer.Request;
            Assert.StartsWith("POST /v1/apps/shop/maintenance HTTP/1.1\r\n", request);
            Assert.Contains("Content-Type: application/json; charset=utf-8\r\n", request);
            Assert.Contains("Content-Length: ", request);
            Assert.Contains("\"on\": true", request[request.IndexOf("\r\n\r\n", StringComparison.Ordinal)..]);
        }
        // A status other than 2xx on a GET keeps HttpClient's StatusCode, which `top` reads (404: an agent without /v1/metrics).
        await using (AnsweringPeer.Start(Home.Socket, 404, "text/plain", "no"))
            Assert.Equal(System.Net.HttpStatusCode.NotFound, (await Assert.ThrowsAsync<HttpRequestException>(() => client.MetricsAsync(CancellationToken.None))).StatusCode);

        string[] malformed =
        [
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n[]",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n[]\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n[]\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n[]",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n[]",
            "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n[]",
            "HTTP/1.1 200 OK\r\nContent-Length: 2",
            "agent: out of memory\r\n\r\n",
            "",
        ];
        foreach (var answer in malformed)
            await using (AnsweringPeer.StartRaw(Home.Socket, answer))
            {
                var error = await Assert.ThrowsAsync<HttpRequestException>(() => client.AppsAsync(CancellationToken.None));
                Assert.StartsWith("the agent", error.Message);
            }

        // Mid-stream: the activation's progress lines arrive, then the agent is gone before the result.
        var line = """{"event":"phase_started","phase":"rolling"}""" + "\n";
        await using (AnsweringPeer.StartRaw(Home.Socket, $"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{line.Length:x}\r\n{line}\r\n"))
        {
            var replayed = new StringWriter();
            var error = await Assert.ThrowsAsync<HttpIOException>(() =>
                client.ActivateAsync("/etc/shop.yml", "shop", "r2", "/srv/shop/releases/r2", new JsonProgress(replayed), CancellationToken.None));
            Assert.StartsWith("the agent closed the connection before its answer was complete", error.Message);
            Assert.Contains("rolling", replayed.ToString());
        }
    }

    /// <summary>No agent: no socket file, or the file of one that is gone (connection refused). Nothing was sent either way.</summary>
    [Fact]
    public async Task Without_an_agent_the_client_says_it_is_not_running_and_an_activation_that_nothing_took()
    {
        using var client = new AgentClient(Home);
        Assert.False(await client.IsRunningAsync(CancellationToken.None));
        Assert.Null(await client.AppsIfRunningAsync(CancellationToken.None));
        using (var dead = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            dead.Bind(new UnixDomainSocketEndPoint(Home.Socket + ".bound"));
            File.Move(Home.Socket + ".bound", Home.Socket);
        }
        Assert.False(await client.IsRunningAsync(CancellationToken.None));
        var refused = await Assert.ThrowsAsync<HttpRequestException>(() => client.InfoAsync(CancellationToken.None));
        Assert.Equal(HttpRequestError.ConnectionError, refused.HttpRequestError);
        Assert.IsType<SocketException>(refused.InnerException);
        Assert.Contains(Home.Socket, refused.Message);
        var notListening = await Assert.ThrowsAsync<AgentNotListeningException>(() =>
            client.ActivateAsync("/etc/shop.yml", "shop", "r2", "/srv/shop/releases/r2", new SilentProgress(), CancellationToken.None));
        Assert.StartsWith($"nothing answers on the agent socket {Home.Socket} (", notListening.Message);
    }

    /// <summary>The real agent's control answers, read with the records it writes them with; a request it cannot read is refused, named.</summary>
    [Fact]
    [Trait(Needs.Trait, Needs.Slow)]
    public async Task The_real_agent_answers_in_the_records_the_client_reads_and_refuses_an_unreadable_activate_request()
    {
        using var bed = new AgentBed();
        var home = new AgentHome(bed.Home);
        var lines = new List<string>();
        using var agent = bed.Start(line => { lock (lines) lines.Add(line); }, "agent");
        using var client = new AgentClient(home);
        await Wait.UntilAsync(() => client.IsRunningAsync(CancellationToken.None), TimeSpan.FromSeconds(30), "the agent to answer");

        Assert.Empty(await client.WarningsAsync(CancellationToken.None));
        Assert.Empty(await client.AppsAsync(CancellationToken.None));
        Assert.Empty((await client.AppsIfRunningAsync(CancellationToken.None))!);
        var info = await client.InfoAsync(CancellationToken.None);
        Assert.Equal(CutoverVersion.Current, info.Version);
        Assert.Equal(File.ReadAllText(home.AgentPid).Trim(), info.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("the agent runs no app 'ghost'", await client.StopAppAsync("ghost", CancellationToken.None));
        Assert.Equal("the agent has no release of 'ghost' to start; deploy one", await client.StartAppAsync("ghost", CancellationToken.None));

        using var http = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(home.Socket), ct);
                return new NetworkStream(socket, ownsSocket: true);
            },
        }) { BaseAddress = new Uri("http://agent/") };
        using var refused = await http.PostAsync("v1/apps/ghost/activate", new StringContent("""{"config":"/etc/ghost.yml"}"""));
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, refused.StatusCode);
        var body = await refused.Content.ReadAsStringAsync();
        var refusal = Json.TryRead<AgentRefusal>(body, out var problem);
        Assert.True(refusal is not null, problem + ": " + body);
        Assert.StartsWith("cannot read the activate request (", refusal.Error);
        Assert.Empty(await client.AppsAsync(CancellationToken.None));
    }

    /// <summary>Listens on a Unix socket and answers the first HTTP request with a fixed status and body, then closes.</summary>
    private sealed class AnsweringPeer : IAsyncDisposable
    {
        private readonly Socket _listener;
        private readonly Task _serving;
        private readonly string _path;
        private readonly TaskCompletionSource<string> _request = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>The one request it answered, as it arrived.</summary>
        public Task<string> Request => _request.Task;

        private AnsweringPeer(string path, byte[] response)
        {
            _path = path;
            File.Delete(path);
            _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            _listener.Bind(new UnixDomainSocketEndPoint(path));
            _listener.Listen(1);
            _serving = ServeAsync(response);
        }

        public static AnsweringPeer Start(string path, int status, string contentType, string body)
        {
            var bytes = Encoding.UTF8.GetBytes(body);
            var head = $"HTTP/1.1 {status} X\r\nContent-Type: {contentType}\r\nContent-Length: {bytes.Length}\r\nConnection: close\r\n\r\n";
            return new(path, [.. Encoding.ASCII.GetBytes(head), .. bytes]);
        }

        /// <summary>Answers with exactly these bytes (head and body as given: chunked, cut short, not HTTP at all), then closes.</summary>
        public static AnsweringPeer StartRaw(string path, string response) => new(path, Encoding.UTF8.GetBytes(response));

        private async Task ServeAsync(byte[] response)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            using var connection = await _listener.AcceptAsync(timeout.Token);
            // The whole request first (headers, then a body by length or chunks): closing on unread bytes would be a reset.
            var request = new StringBuilder();
            var buffer = new byte[4096];
            while (!RequestComplete(request.ToString()))
            {
                var n = await connection.ReceiveAsync(buffer, timeout.Token);
                if (n == 0) break;
                request.Append(Encoding.UTF8.GetString(buffer, 0, n));
            }
            _request.TrySetResult(request.ToString());
            await connection.SendAsync(response, timeout.Token);
            connection.Shutdown(SocketShutdown.Send);
            // Until the client has read it all and closed its end.
            while (await connection.ReceiveAsync(buffer, timeout.Token) > 0) { }
        }

        private static bool RequestComplete(string request)
        {
            var end = request.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end < 0) return false;
            var headers = request[..end].ToLowerInvariant();
            var body = request[(end + 4)..];
            if (headers.Contains("transfer-encoding: chunked")) return body.EndsWith("0\r\n\r\n", StringComparison.Ordinal);
            var length = headers.Split("\r\n").FirstOrDefault(h => h.StartsWith("content-length:", StringComparison.Ordinal));
            return length is null || Encoding.UTF8.GetByteCount(body) >= int.Parse(length["content-length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                await _serving.WaitAsync(TimeSpan.FromSeconds(30));
            }
            finally
            {
                _listener.Dispose();
                File.Delete(_path);
            }
        }
    }
}
