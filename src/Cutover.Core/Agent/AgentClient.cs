using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json;
using Cutover.Deploy;
using Cutover.Progress;

namespace Cutover.Agent;

/// <summary>The CLI's side of the control socket.</summary>
public sealed class AgentClient : IDisposable
{
    private readonly AgentHome _home;

    public AgentClient(AgentHome home)
    {
        _home = home;
    }

    /// <summary>One request over agent.sock (AgentSocketHttp: HttpClient's start-up cost is most of a short command's).</summary>
    private Task<AgentHttpResponse> SendAsync(string method, string path, byte[]? json, CancellationToken cancellationToken) =>
        AgentSocketHttp.SendAsync(_home.Socket, method, path, json, cancellationToken);

    /// <summary>A GET's whole answer; a status other than 2xx is an <see cref="HttpRequestException"/> with it, as HttpClient's GetStringAsync.</summary>
    private async Task<string> GetStringAsync(string path, CancellationToken cancellationToken)
    {
        using var response = await SendAsync("GET", path, null, cancellationToken);
        if (!response.IsSuccessStatusCode)
            throw new HttpRequestException($"the agent answered GET {path} with {response.Status}", null, response.StatusCode);
        return await response.ReadAsStringAsync(cancellationToken);
    }

    public async Task<bool> IsRunningAsync(CancellationToken cancellationToken) => await RunningAppsAnswerAsync(cancellationToken) is not null;

    /// <summary>
    /// The agent's apps when one runs, else null: the question <see cref="IsRunningAsync"/> asks, answered once for a caller
    /// that wants both (`status`: each request is a connection and the agent's whole app list).
    /// </summary>
    public async Task<IReadOnlyList<AppView>?> AppsIfRunningAsync(CancellationToken cancellationToken) =>
        await RunningAppsAnswerAsync(cancellationToken) is { } body ? Answer<List<AppView>>("GET /v1/apps", body) : null;

    /// <summary>GET /v1/apps within 5 s: its body when the agent answers 2xx; null when no agent answers on the socket.</summary>
    private async Task<string?> RunningAppsAnswerAsync(CancellationToken cancellationToken)
    {
        if (!File.Exists(_home.Socket)) return null;
        RefuseOtherUsersSocket();
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            using var response = await SendAsync("GET", "/v1/apps", null, timeout.Token);
            return response.IsSuccessStatusCode ? await response.ReadAsStringAsync(timeout.Token) : null;
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    /// <summary>
    /// The agent answers only its own uid (and root). Another user's socket would look like no agent at all, and a
    /// deploy would then start a second agent on the same home; so it is named for what it is.
    /// </summary>
    private void RefuseOtherUsersSocket()
    {
        var self = Platform.LibC.GetUid();
        if (self == 0) return;
        var owner = Platform.LibC.Owner(_home.Socket);
        if (owner == self) return;
        var name = File.ReadLines("/etc/passwd").Select(l => l.Split(':')).FirstOrDefault(f => f.Length > 2 && f[2] == owner.ToString(System.Globalization.CultureInfo.InvariantCulture))?[0];
        throw new DeployException($"the agent socket {_home.Socket} belongs to another user ({(name is null ? "" : name + ", ")}uid {owner}), and the agent answers only its own user; " +
                                  "run cutover as that user, or set CUTOVER_HOME to a directory of your own");
    }

    /// <summary>
    /// Starts `cutover agent --quiet` in the background (its own session) unless one answers. The agent writes and
    /// rotates agent.log itself; its stdout and stderr carry only what the runtime prints when it crashes, kept in
    /// agent.stderr.log.
    /// </summary>
    public async Task EnsureRunningAsync(IReadOnlyList<string> agentCommand, IDeployProgress progress, CancellationToken cancellationToken)
    {
        if (await IsRunningAsync(cancellationToken)) return;
        // The agent inherits the metrics address: a bad one is this command's bad input, not an agent that never starts.
        Metrics.MetricsAddress.Resolve(null, Environment.GetEnvironmentVariable);
        Directory.CreateDirectory(_home.Path);
        var stderrBefore = File.Exists(_home.AgentStderr) ? new FileInfo(_home.AgentStderr).Length : 0;
        var shell = $"exec {string.Join(' ', agentCommand.Select(Quote))} >> {Quote(_home.AgentStderr)} 2>&1 < /dev/null";
        var start = new ProcessStartInfo("setsid", ["-f", "/bin/sh", "-c", shell]) { UseShellExecute = false };
        start.Environment["CUTOVER_HOME"] = _home.Path;
        // The CLI runs with tiered PGO off (short runs pay for its instrumentation and never profit); the agent
        // is long-running and its proxy does profit, so it gets it back.
        start.Environment["DOTNET_TieredPGO"] = "1";
        using (var launcher = Process.Start(start)!) await launcher.WaitForExitAsync(cancellationToken);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (await IsRunningAsync(cancellationToken))
            {
                progress.Info($"started the agent in the background (log: {_home.AgentLog})");
                return;
            }
            // An agent that refused to start (its metrics address in use, say) said why on stderr: no need to wait 30 s.
            if (StartFailure(stderrBefore) is { } failure) throw new DeployException($"the agent did not start: {failure}");
            await Task.Delay(100, cancellationToken);
        }
        throw new DeployException($"the agent did not start within 30 s; see {_home.AgentLog} and {_home.AgentStderr}");
    }

    /// <summary>The "error: ..." line a failed agent start wrote to agent.stderr.log after <paramref name="offset"/>, if any.</summary>
    private string? StartFailure(long offset)
    {
        try
        {
            using var stream = new FileStream(_home.AgentStderr, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            if (stream.Length <= offset) return null;
            stream.Seek(offset, SeekOrigin.Begin);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd().Split('\n').FirstOrDefault(l => l.StartsWith("error: ", StringComparison.Ordinal))?["error: ".Length..].Trim();
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Moves an app to a release; progress events are replayed on <paramref name="progress"/>.</summary>
    /// <param name="roles">This host's fleet roles (only the process types of those run); null without a fleet: every type.</param>
    /// <param name="configFiles">Every -c file when there are several (layered config); the agent reads them in order.</param>
    public Task<ActivationResult> ActivateAsync(string configFile, string app, string releaseId, string releaseDir, IDeployProgress progress, CancellationToken cancellationToken,
        IReadOnlyList<string>? roles = null, IReadOnlyList<string>? configFiles = null) =>
        ActivateAsync(app, new AgentServer.ActivateRequest(configFile, releaseId, releaseDir, roles, configFiles is { Count: > 1 } ? configFiles : null), progress, cancellationToken);

    /// <summary>Any activation request (a deploy's, a restart, a scale); progress is replayed on <paramref name="progress"/>, SIGINT cancels it.</summary>
    public async Task<ActivationResult> ActivateAsync(string app, AgentServer.ActivateRequest activation, IDeployProgress progress, CancellationToken cancellationToken)
    {
        var releaseId = activation.ReleaseId;
        var path = $"/v1/apps/{Uri.EscapeDataString(app)}/activate";
        // Not cancelled by the token: a cancelled deploy asks the agent to undo the move (`cancel`) and then waits for
        // its result, so the CLI never exits with a mixed set of instances behind it.
        using var response = await SendActivateAsync(path, Json.WriteUtf8(activation, Json.Options));
        if (!response.IsSuccessStatusCode)
            return ActivationResult.NotLive($"the agent answered {response.Status}: {await response.ReadAsStringAsync(CancellationToken.None)}");
        await using var onCancel = cancellationToken.Register(() =>
        {
            progress.Warning("cancelling: the agent puts every instance it replaced back on the running release");
            _ = CancelAsync(app, releaseId);
        });
        using var reader = new StreamReader(response.Body);
        while (await reader.ReadLineAsync(CancellationToken.None) is { } line)
        {
            switch (ProgressStream<ActivationResultEvent>.TryRead(line, out var problem))
            {
                case ActivationResultEvent { Result: var result }:
                    if (result.Outcome == ActivationOutcome.Cancelled) throw new OperationCanceledException(result.Error, cancellationToken);
                    return result;
                case ProgressEvent.CommandFailed failed:
                    throw new DeployException($"the agent ({_home.Socket}) failed the activation: {string.Join("; ", failed.Errors)}");
                case { } progressEvent:
                    progressEvent.ReplayOn(progress);
                    break;
                default:
                    // Nothing after it can be trusted to mean what it says. Leaving closes the connection, which the
                    // agent takes as a vanished CLI: it puts back every instance it replaced.
                    throw new DeployException($"the agent ({_home.Socket}) sent a line that is not a progress event or a result ({problem}): " +
                                              Json.Quote(line));
            }
        }
        return ActivationResult.NotLive("the agent closed the connection before it finished (did it stop?)");
    }

    /// <summary>
    /// An activation without asking first whether the agent runs, which cost a round trip (and the agent's whole app list)
    /// on every deploy and rollback: the request finds out itself. Only when nothing listens on the socket (no socket file,
    /// or a refused connection, so nothing was sent) is the agent started and the request sent to it.
    /// </summary>
    public async Task<ActivationResult> ActivateStartingAgentAsync(IReadOnlyList<string> agentCommand, string app, AgentServer.ActivateRequest activation,
        IDeployProgress progress, CancellationToken cancellationToken)
    {
        if (File.Exists(_home.Socket))
        {
            RefuseOtherUsersSocket();
            try
            {
                return await ActivateAsync(app, activation, progress, cancellationToken);
            }
            catch (AgentNotListeningException)
            {
                // The socket of an agent that is gone: start one, as for no socket at all.
            }
        }
        await EnsureRunningAsync(agentCommand, progress, cancellationToken);
        return await ActivateAsync(app, activation, progress, cancellationToken);
    }

    /// <summary>
    /// The activate request, until the agent's headers: it sends them before it waits for a running activation, so only an
    /// agent that does not answer at all takes longer than <see cref="AnswerTimeout"/> (the liveness check the CLI used to
    /// make with a request of its own first). A connection that could not be made is an <see cref="AgentNotListeningException"/>.
    /// </summary>
    private async Task<AgentHttpResponse> SendActivateAsync(string path, byte[] json)
    {
        using var headers = new CancellationTokenSource(AnswerTimeout);
        try
        {
            return await SendAsync("POST", path, json, headers.Token);
        }
        catch (HttpRequestException e) when (e.HttpRequestError == HttpRequestError.ConnectionError && e.InnerException is SocketException socket)
        {
            // The connect's own exception: the request was never sent.
            throw new AgentNotListeningException($"nothing answers on the agent socket {_home.Socket} ({socket.Message})");
        }
        catch (OperationCanceledException) when (headers.IsCancellationRequested)
        {
            // Leaving closes the connection, which the agent takes as a vanished CLI if it ever reads the request.
            throw new DeployException($"the agent ({_home.Socket}) did not answer within {AnswerTimeout.TotalSeconds:0} s; see {_home.AgentLog}");
        }
    }

    private static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(5);

    private async Task CancelAsync(string app, string releaseId)
    {
        try
        {
            using var response = await SendAsync("POST", $"/v1/apps/{Uri.EscapeDataString(app)}/cancel?release={Uri.EscapeDataString(releaseId)}", null, CancellationToken.None);
        }
        catch (HttpRequestException)
        {
            // The agent went away: the activation's connection ends too, and the read loop reports that.
        }
    }

    public async Task<IReadOnlyList<AppView>> AppsAsync(CancellationToken cancellationToken) =>
        Answer<List<AppView>>("GET /v1/apps", await GetStringAsync("/v1/apps", cancellationToken));

    /// <summary>The agent's start-up warnings (GET /v1/agent); empty from an agent that predates the endpoint.</summary>
    public async Task<IReadOnlyList<string>> WarningsAsync(CancellationToken cancellationToken)
    {
        using var response = await SendAsync("GET", "/v1/agent", null, cancellationToken);
        if (!response.IsSuccessStatusCode) return [];
        return Answer<AgentInfo>("GET /v1/agent", await response.ReadAsStringAsync(cancellationToken)).Warnings;
    }

    /// <summary>Who answers (GET /v1/agent): pid, version and since when (both null from an agent that predates them).</summary>
    /// <summary>GET /v1/metrics: the agent's Prometheus text, the same as its /metrics (served even with --metrics-listen off).</summary>
    public async Task<string> MetricsAsync(CancellationToken cancellationToken) =>
        await GetStringAsync("/v1/metrics", cancellationToken);

    public async Task<AgentInfo> InfoAsync(CancellationToken cancellationToken) =>
        Answer<AgentInfo>("GET /v1/agent", await GetStringAsync("/v1/agent", cancellationToken));

    /// <summary>
    /// Asks the agent to hand over to a new agent run by <paramref name="command"/>; returns once the new one has committed
    /// (the old one then drains and exits). Throws <see cref="AgentRefusedException"/> when the upgrade did not happen:
    /// then the old agent serves on as before. Not cancellable: the agent finishes a handover it began either way.
    /// </summary>
    public Task<AgentUpgraded> UpgradeAsync(IReadOnlyList<string> command) =>
        PostAsync<AgentUpgraded>("/v1/agent/upgrade", JsonSerializer.SerializeToUtf8Bytes(new UpgradeRequest(command), Json.Options), CancellationToken.None);

    /// <summary>Whether process <paramref name="pid"/> (not ours: pidfd) exits within <paramref name="within"/>.</summary>
    public static async Task<bool> WaitUntilGoneAsync(int pid, TimeSpan within, CancellationToken cancellationToken)
    {
        using var watch = Platform.ProcessWatch.TryOpen(pid);
        if (watch is null) return true;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(within);
        try
        {
            await watch.WaitForExitAsync(timeout.Token);
            return true;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>Stops the app's instances; null when done, else the agent's refusal.</summary>
    public Task<string?> StopAppAsync(string app, CancellationToken cancellationToken) => AppCommandAsync<AppStopped>(app, "stop", cancellationToken);

    /// <summary>Starts the app's instances on their last release; null when done (or they ran), else the agent's refusal.</summary>
    public Task<string?> StartAppAsync(string app, CancellationToken cancellationToken) => AppCommandAsync<AppStarted>(app, "start", cancellationToken);

    /// <summary>Maintenance on (with the page, or the default one when null) or off; throws <see cref="AgentRefusedException"/>.</summary>
    public Task<MaintenanceSet> SetMaintenanceAsync(string app, MaintenanceRequest request, CancellationToken cancellationToken) =>
        PostThroughUpgradeAsync<MaintenanceSet>($"/v1/apps/{Uri.EscapeDataString(app)}/maintenance", JsonSerializer.SerializeToUtf8Bytes(request, Json.Options), cancellationToken);

    /// <summary>Holds the app's new requests until resume or <paramref name="timeout"/>; throws <see cref="AgentRefusedException"/>.</summary>
    public Task<PauseSet> PauseAsync(string app, TimeSpan timeout, CancellationToken cancellationToken) =>
        PostThroughUpgradeAsync<PauseSet>($"/v1/apps/{Uri.EscapeDataString(app)}/pause?timeout_ms={(long)Math.Ceiling(timeout.TotalMilliseconds)}", null, cancellationToken);

    /// <summary>Releases the app's held requests; throws <see cref="AgentRefusedException"/>.</summary>
    public Task<PauseResumed> ResumeAsync(string app, CancellationToken cancellationToken) =>
        PostThroughUpgradeAsync<PauseResumed>($"/v1/apps/{Uri.EscapeDataString(app)}/resume", null, cancellationToken);

    /// <summary>
    /// A traffic command, asked again while the agent answers 503 (it is handing over to a new agent, or has just handed
    /// over: the new one answers in a moment), up to the takeover's deadline and a little: a deploy's resume at the end
    /// of its migrations must not be lost to an upgrade that runs meanwhile (held requests would get 503 at the timeout).
    /// </summary>
    private async Task<TAnswer> PostThroughUpgradeAsync<TAnswer>(string path, byte[]? json, CancellationToken cancellationToken) where TAnswer : class
    {
        var asked = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await PostAsync<TAnswer>(path, json, cancellationToken);
            }
            catch (AgentRefusedException e) when (e.Status == 503 && asked.Elapsed < AgentTakeover.Deadline + TimeSpan.FromSeconds(10))
            {
                await Task.Delay(100, cancellationToken);
            }
        }
    }

    private async Task<TAnswer> PostAsync<TAnswer>(string path, byte[]? json, CancellationToken cancellationToken) where TAnswer : class
    {
        using var response = await SendAsync("POST", path, json, cancellationToken);
        var body = await response.ReadAsStringAsync(cancellationToken);
        if (response.IsSuccessStatusCode) return Answer<TAnswer>("POST " + path, body);
        throw new AgentRefusedException(response.Status, Answer<AgentRefusal>($"POST {path} ({response.Status})", body).Error);
    }

    private async Task<string?> AppCommandAsync<TAnswer>(string app, string action, CancellationToken cancellationToken) where TAnswer : class
    {
        var path = $"/v1/apps/{Uri.EscapeDataString(app)}/{action}";
        using var response = await SendAsync("POST", path, null, cancellationToken);
        var body = await response.ReadAsStringAsync(cancellationToken);
        if (response.IsSuccessStatusCode)
        {
            Answer<TAnswer>("POST " + path, body);
            return null;
        }
        return Answer<AgentRefusal>($"POST {path} ({response.Status})", body).Error;
    }

    /// <summary>An answer read as the record the agent writes it with; anything else names the agent and what it sent.</summary>
    private T Answer<T>(string request, string body) where T : class =>
        Json.TryRead<T>(body, out var problem)
        ?? throw new DeployException($"the agent ({_home.Socket}) answered {request} with something Cutover cannot read ({problem}): {Json.Quote(body)}");

    /// <summary>SIGTERM to the agent named in agent.pid: it drains its apps and exits. Waits up to 30 s.</summary>
    public async Task StopAgentAsync()
    {
        if (!File.Exists(_home.AgentPid) || !int.TryParse(File.ReadAllText(_home.AgentPid), out var pid)) return;
        if (!Platform.LibC.Kill(pid, 15)) return;
        for (var i = 0; i < 300 && Platform.LibC.Kill(pid, 0); i++) await Task.Delay(100);
    }

    private static string Quote(string text) => "'" + text.Replace("'", "'\\''") + "'";

    /// <summary>Nothing to release (each request has its connection); kept so callers' `using` stays right if that changes.</summary>
    public void Dispose() { }
}

/// <summary>No agent listens on the socket: the connection was refused or the socket is gone, so nothing was sent.</summary>
public sealed class AgentNotListeningException(string message) : DeployException(message);

/// <summary>The agent's refusal of a command, with its HTTP status (404: it runs no such app).</summary>
public sealed class AgentRefusedException(int status, string message) : DeployException(message)
{
    public int Status { get; } = status;
    public bool NoSuchApp => Status == 404;
}

/// <summary>The rolling strategy's activation, done by the agent.</summary>
/// <param name="roles">A fleet host's roles, sent with every activation (null: not a fleet host, every role).</param>
/// <param name="configFiles">Every -c file when there are several (layered config); the agent reads them in order.</param>
public sealed class AgentActivator(AgentClient client, string configFile, string app, IReadOnlyList<string> agentCommand,
    IReadOnlyList<string>? roles = null, IReadOnlyList<string>? configFiles = null) : IInstanceActivator
{
    public async Task<ActivationResult> ActivateAsync(string releaseId, string releaseDir, IDeployProgress progress, CancellationToken cancellationToken)
    {
        return await client.ActivateStartingAgentAsync(agentCommand, app,
            new AgentServer.ActivateRequest(configFile, releaseId, releaseDir, roles, configFiles is { Count: > 1 } ? configFiles : null), progress, cancellationToken);
    }

    public Task<string?> StopAsync(IDeployProgress progress, CancellationToken cancellationToken) => client.StopAppAsync(app, cancellationToken);

    public async Task<DateTimeOffset?> PauseAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        // No agent, or an agent without the app: nothing serves it yet, so there is no traffic to hold.
        if (!await client.IsRunningAsync(cancellationToken)) return null;
        try
        {
            return (await client.PauseAsync(app, timeout, cancellationToken)).Until;
        }
        catch (AgentRefusedException e) when (e.NoSuchApp)
        {
            return null;
        }
    }

    public async Task ResumeAsync(CancellationToken cancellationToken) => await client.ResumeAsync(app, cancellationToken);
}
