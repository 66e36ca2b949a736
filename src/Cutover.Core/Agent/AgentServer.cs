using System.Text.Json;
using Cutover.Config;
using Cutover.Deploy;
using Cutover.Platform;
using Cutover.Progress;
using Cutover.Releases;
using Cutover.Rolling;
using Cutover.Supervisor;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Cutover.Agent;

/// <summary>
/// `cutover agent`: one per host, many apps. The CLI reaches it over a Unix socket in CUTOVER_HOME (mode 0600,
/// peer uid checked). It owns each app's proxy and instances, persists what runs after every change, and
/// starts it all again when it starts.
/// </summary>
public sealed partial class AgentServer : IAsyncDisposable
{
    private readonly AgentHome _home;
    private readonly AgentStateStore _store;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    private readonly HttpClient _http = new() { Timeout = Timeout.InfiniteTimeSpan };
    private readonly object _spawnGate = new();
    private readonly SemaphoreSlim _gate = new(1, 1);
    /// <summary>Orders state writes: instances report starts and exits from their own threads.</summary>
    private readonly object _stateGate = new();
    /// <summary>state.json's text as this agent last wrote it, and the apps' records without their pids as last written
    /// durably (null: nothing written yet, so the first write is durable); both under <see cref="_stateGate"/>.</summary>
    private string? _stateWritten, _stateDurable;
    /// <summary>What state.last-good.json still has to get: an activation answers once state.json is durable and writes
    /// the copy after its answer (<see cref="CatchUpLastGood"/>). Under <see cref="_stateGate"/>.</summary>
    private string? _lastGoodBehind;
    private readonly Dictionary<string, AppRuntime> _apps = new(StringComparer.Ordinal);
    /// <summary>Blue-green's warm set per app, kept between deploys.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, BlueGreen.WarmSetKeeper> _warmSets = new(StringComparer.Ordinal);
    /// <summary>The proxy's listeners, shared by the apps that name the same address; an app's routes come and go, the listener stays.</summary>
    private readonly Proxy.ProxyListeners _listeners;
    /// <summary>proxy.tls.acme: the http-01 answers the plain listeners give, and each app's certificate manager (CUTOVER_HOME/certs).</summary>
    private readonly Acme.AcmeCertificates _acme;
    // Concurrent: instances report starts and exits (and the state is written) from their own threads.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, AppRecord> _records = new(StringComparer.Ordinal);
    /// <summary>What went wrong at start-up that people must see (a corrupt state.json): in agent.log and `cutover status`.</summary>
    private readonly List<string> _warnings = [];
    private readonly Dictionary<string, CancellationTokenSource> _activations = new(StringComparer.Ordinal);
    /// <summary>Per app, the activation holding the gate now and its phase: `GET /v1/apps` shows it (`cutover top`).</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ActivationPhase> _deploying = new(StringComparer.Ordinal);
    private WebApplication? _web;
    /// <summary>agent.sock, bound by the agent itself (Kestrel gets the descriptor) so that an upgrade can hand it over.</summary>
    private System.Net.Sockets.Socket? _controlSocket;
    private readonly DateTimeOffset _since = DateTimeOffset.UtcNow;
    /// <summary>sd_notify when run by systemd (NOTIFY_SOCKET): READY=1 once serving; an upgrade's RELOADING=1 and MAINPID=.</summary>
    private readonly SystemdNotify _systemd = SystemdNotify.FromEnvironment();
    /// <summary>Taken by the command before anything in the home was touched; released last, when the agent is disposed.</summary>
    private readonly AgentHomeLock _homeLock;
    /// <summary>The Prometheus meters: one set for the agent's life, so counters outlive every deploy of every app.</summary>
    private readonly Metrics.AgentMetrics _metrics = new();
    private bool _shutDown;
    /// <summary>/metrics on <see cref="MetricsListen"/>; null when off (or not bound yet, during a takeover).</summary>
    private Metrics.MetricsEndpoint? _metricsEndpoint;

    /// <summary>Where /metrics is served (Metrics.MetricsAddress); null: only the control socket's /v1/metrics.</summary>
    public System.Net.IPEndPoint? MetricsListen { get; init; }

    /// <param name="homeLock">Taken by the caller before it touched anything in the home (agent.log included).</param>
    public AgentServer(AgentHome home, AgentHomeLock homeLock, ILoggerFactory loggers)
    {
        _home = home;
        _homeLock = homeLock;
        _store = new AgentStateStore(home);
        _loggers = loggers;
        _logger = loggers.CreateLogger<AgentServer>();
        _acme = new Acme.AcmeCertificates(Path.Combine(home.Path, "certs"), loggers);
        _listeners = new Proxy.ProxyListeners(loggers, _acme);
        // Said once per agent (an upgraded one too).
        _logger.LogInformation("proxy: {Count} socket threads, each client connection and its upstream connections on one", _listeners.SocketThreads);
    }

    /// <summary>Runs until SIGTERM/SIGINT (or the token); then drains every app and exits, keeping the state.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        File.SetUnixFileMode(_home.Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        // Before any app starts: a metrics port in use stops the agent here, with nothing started.
        await StartMetricsAsync(cancellationToken);
        await RestoreAsync(cancellationToken);

        File.Delete(_home.Socket);
        var control = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        try
        {
            control.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(_home.Socket));
            File.SetUnixFileMode(_home.Socket, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            control.Listen(512);
        }
        catch
        {
            control.Dispose();
            throw;
        }
        await StartControlAsync(control, cancellationToken);
        AtomicFile.WriteAllText(_home.AgentPid, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        _logger.LogInformation("agent listening on {Socket} (cutover {Version})", _home.Socket, CutoverVersion.Current);
        // MAINPID= with READY=1: systemd then tracks this process even if ExecStart went through a wrapper (a shell script
        // that runs cutover without exec), and after an upgrade the unit's main pid is always the agent that serves.
        await NotifySystemdAsync(n => n.MainPidReadyAsync(Environment.ProcessId, cancellationToken));
        await WaitUntilStoppedAsync(cancellationToken);
    }

    /// <summary>Kestrel on the control socket (bound and listening already, this agent's or handed over by the old one).</summary>
    private async Task StartControlAsync(System.Net.Sockets.Socket control, CancellationToken cancellationToken)
    {
        _controlSocket = control;
        var builder = Cutover.Platform.UnwatchedWebHost.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(_loggers);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromMinutes(2));
        var uid = LibC.GetUid();
        builder.WebHost.ConfigureKestrel(k => k.ListenHandle((ulong)control.SafeHandle.DangerousGetHandle(), listen => listen.Use(next => async connection =>
        {
            // Only the agent's own user (or root) may drive it.
            var socket = connection.Features.Get<IConnectionSocketFeature>()?.Socket;
            var peer = socket is null ? null : PeerCredentials.Read(socket);
            if (peer is null || (peer.Value.Uid != uid && peer.Value.Uid != 0))
            {
                _logger.LogWarning("refused a control connection from uid {Uid}", peer?.Uid);
                connection.Abort();
                return;
            }
            await next(connection);
        })));
        _web = builder.Build();
        MapEndpoints(_web);
        await _web.StartAsync(cancellationToken);
    }

    /// <summary>A notification to systemd; one that cannot be delivered is logged, never a reason to stop serving.</summary>
    private async Task NotifySystemdAsync(Func<SystemdNotify, Task> notify)
    {
        if (!_systemd.Enabled) return;
        try
        {
            await notify(_systemd);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException or ArgumentException or OperationCanceledException)
        {
            _logger.LogWarning("cannot notify systemd: {Error}", e.Message);
        }
    }

    private async Task WaitUntilStoppedAsync(CancellationToken cancellationToken)
    {
        var lifetime = _web!.Services.GetRequiredService<IHostApplicationLifetime>();
        // Asynchronous continuations: StopApplication is called from a control request (the upgrade), which the
        // shutdown below waits for.
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lifetime.ApplicationStopping.Register(() => stopped.TrySetResult());
        using (cancellationToken.Register(() => stopped.TrySetResult()))
            await stopped.Task;
        await ShutdownAsync();
    }

    private void MapEndpoints(WebApplication web)
    {
        web.MapGet("/v1/apps", () => Results.Json(_apps.Values.Select(Describe).ToList(), Json.Options));
        // The same text as /metrics (even with --metrics-listen off): what `cutover top` reads.
        web.MapGet("/v1/metrics", async (HttpContext context) =>
        {
            var text = await ScrapeAsync(context.RequestAborted);
            context.Response.ContentType = Metrics.AgentMetrics.ContentType;
            await context.Response.Body.WriteAsync(text, context.RequestAborted);
        });
        web.MapGet("/v1/agent", () => Results.Json(new AgentInfo(Environment.ProcessId, _warnings, CutoverVersion.Current, _since), Json.Options));
        // Behind the gate (no activation meanwhile); the handover itself is not cancelled by the CLI leaving.
        web.MapPost("/v1/agent/upgrade", (Delegate)((HttpContext context) => ThreadPoolContext.Run(() => UpgradeAsync(context))));
        // Each command's work resumes on the thread pool, never on the proxy's socket threads.
        web.MapPost("/v1/apps/{app}/activate", (string app, HttpContext context) => ThreadPoolContext.Run(() => ActivateAsync(app, context)));
        // Not behind the gate: it reaches the activation that holds it.
        web.MapPost("/v1/apps/{app}/cancel", (string app, string release) => CancelActivation(app, release));
        web.MapPost("/v1/apps/{app}/stop", (string app, CancellationToken ct) => ThreadPoolContext.Run(() => StopAppAsync(app, ct)));
        web.MapPost("/v1/apps/{app}/start", (string app, CancellationToken ct) => ThreadPoolContext.Run(() => StartAppAsync(app, ct)));
        // Not behind the gate either: a deploy pauses and resumes around its migrations while it holds no gate, and a
        // resume must never wait behind a long activation.
        web.MapPost("/v1/apps/{app}/maintenance", (string app, HttpContext context) => ThreadPoolContext.Run(() => SetMaintenanceAsync(app, context)));
        web.MapPost("/v1/apps/{app}/pause", (string app, long? timeout_ms) => ThreadPoolContext.Run(() => PauseAsync(app, timeout_ms)));
        web.MapPost("/v1/apps/{app}/resume", (string app) => ThreadPoolContext.Run(() => ResumeAsync(app)));
    }

    private async Task<IResult> SetMaintenanceAsync(string app, HttpContext context)
    {
        using var body = new StreamReader(context.Request.Body);
        var text = await body.ReadToEndAsync(context.RequestAborted);
        if (Json.TryRead<MaintenanceRequest>(text, out var problem) is not { } request)
            return Refuse(StatusCodes.Status400BadRequest, $"cannot read the maintenance request ({problem})");
        if (HandoverRefusal() is { } handingOver) return handingOver;
        if (!_apps.TryGetValue(app, out var runtime)) return Refuse(StatusCodes.Status404NotFound, $"the agent runs no app '{app}'; deploy it first");
        if (request.Body is { } page && System.Text.Encoding.UTF8.GetByteCount(page) > Proxy.MaintenancePage.MaxBytes)
            return Refuse(StatusCodes.Status400BadRequest, $"the maintenance page is larger than {Proxy.MaintenancePage.MaxBytes} bytes");
        runtime.Proxy.Gate.SetMaintenance(!request.On ? null
            : request.Body is null ? Proxy.MaintenancePage.Default
            : new Proxy.MaintenancePage(request.Body, request.ContentType ?? "text/plain; charset=utf-8"));
        SaveInstances(runtime);
        _logger.LogInformation("maintenance {State} for {App}", request.On ? "on" : "off", app);
        return Results.Json(new MaintenanceSet(app, request.On), Json.Options);
    }

    private async Task<IResult> PauseAsync(string app, long? timeoutMs)
    {
        if (timeoutMs is not { } ms || ms <= 0 || ms > Proxy.TrafficGate.MaxPause.TotalMilliseconds)
            return Refuse(StatusCodes.Status400BadRequest, $"a pause needs timeout_ms between 1 and {Proxy.TrafficGate.MaxPause.TotalMilliseconds:0}");
        if (HandoverRefusal() is { } handingOver) return handingOver;
        if (!_apps.TryGetValue(app, out var runtime)) return Refuse(StatusCodes.Status404NotFound, $"the agent runs no app '{app}'; deploy it first");
        var until = runtime.Proxy.Gate.PauseFor(TimeSpan.FromMilliseconds(ms));
        SaveInstances(runtime);
        await RelayPauseAsync(app, runtime);
        _logger.LogInformation("{App} paused until {Until:O}", app, until);
        return Results.Json(new PauseSet(app, until), Json.Options);
    }

    private async Task<IResult> ResumeAsync(string app)
    {
        if (HandoverRefusal() is { } handingOver) return handingOver;
        if (!_apps.TryGetValue(app, out var runtime)) return Refuse(StatusCodes.Status404NotFound, $"the agent runs no app '{app}'; deploy it first");
        var held = runtime.Proxy.Gate.Held;
        var wasPaused = runtime.Proxy.Gate.Resume();
        SaveInstances(runtime);
        await RelayPauseAsync(app, runtime);
        _logger.LogInformation("{App} resumed ({Held} held requests released)", app, held);
        return Results.Json(new PauseResumed(app, wasPaused, wasPaused ? held : 0), Json.Options);
    }

    /// <param name="Roles">This host's fleet roles: only the process types with one of them run here (web: role web); null, every type.</param>
    /// <param name="ConfigFiles">Every -c file in order when there are several (Config is the last); null for one.</param>
    /// <param name="Restart">`cutover restart`: every instance (of <paramref name="Processes"/>, or all) replaced on the release that runs, which ReleaseId must name.</param>
    /// <param name="Scale">`cutover scale`: process type -> instances, on the release that runs.</param>
    public sealed record ActivateRequest(string Config, string ReleaseId, string ReleaseDir, IReadOnlyList<string>? Roles = null, IReadOnlyList<string>? ConfigFiles = null,
        bool Restart = false, IReadOnlyList<string>? Processes = null, IReadOnlyDictionary<string, int>? Scale = null)
    {
        public IReadOnlyList<string> Layers => ConfigFiles is { Count: > 0 } files ? files : [Config];
    }

    /// <summary>
    /// Moves an app's instances to a release, streaming progress as NDJSON; the last line is the result. The move is
    /// cancelled (and undone: no mixed set) when the CLI asks (`cancel`, on SIGINT/SIGTERM, and it waits for the
    /// result) or disappears (SIGKILL: nobody will switch `current`, so the instances must stay on what it names).
    /// </summary>
    private async Task ActivateAsync(string app, HttpContext context)
    {
        var trace = new ActivationTrace();
        using var body = new StreamReader(context.Request.Body);
        var text = await body.ReadToEndAsync(context.RequestAborted);
        if (Json.TryRead<ActivateRequest>(text, out var problem) is not { } request)
        {
            // Answered before any progress: the CLI reports the status and this sentence, nothing was moved.
            await Refuse(StatusCodes.Status400BadRequest, $"cannot read the activate request ({problem}): {Json.Quote(text)}").ExecuteAsync(context);
            return;
        }
        trace.Mark("read");
        var key = ActivationKey(app, request.ReleaseId);
        var activationClock = System.Diagnostics.Stopwatch.StartNew();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        lock (_activations) _activations[key] = cancel;
        try
        {
            context.Response.ContentType = "application/x-ndjson";
            // Progress lines are small and written as they happen, from whichever thread reports them.
            context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpBodyControlFeature>()!.AllowSynchronousIO = true;
            // Headers first: once the CLI has them, a `cancel` it sends finds this activation registered.
            await context.Response.StartAsync(context.RequestAborted);
            trace.Mark("headers");
            await using var writer = new StreamWriter(new ClientStream(context.Response.Body)) { AutoFlush = true };
            var progress = new JsonProgress(writer);
            var phase = new ActivationPhase(progress, request.ReleaseId, request.Restart ? "restart" : request.Scale is not null ? "scale" : "deploy");
            ActivationResult result;
            await _gate.WaitAsync(context.RequestAborted);
            trace.Mark("gate");
            _deploying[app] = phase;
            try
            {
                result = _handedOver ? ActivationResult.NotLive(HandedOverMessage)
                    : await ActivateLockedAsync(app, request, phase, trace, cancel.Token);
                if (cancel.IsCancellationRequested && !result.Succeeded) result = result with { Outcome = ActivationOutcome.Cancelled };
            }
            catch (OperationCanceledException) when (cancel.IsCancellationRequested)
            {
                result = new ActivationResult(ActivationOutcome.Cancelled, "cancelled");
            }
            catch (Exception e) when (e is DeployException or ConfigException or IOException)
            {
                result = ActivationResult.NotLive(e.Message);
            }
            finally
            {
                _deploying.TryRemove(app, out _);
                _gate.Release();
            }
            // restart and scale move no release: only activations of a release (deploy, rollback, undo) are deploys.
            if (!request.Restart && request.Scale is null && _apps.GetValueOrDefault(app) is { } activated)
                _metrics.DeployFinished(app, activated.Config.Strategy.Name, JsonNamingPolicy.SnakeCaseLower.ConvertName(result.Outcome.ToString()), activationClock.Elapsed);
            if (result.Outcome == ActivationOutcome.Cancelled) _logger.LogWarning("activation of {App} release {Release} cancelled: {Error}", app, request.ReleaseId, result.Error);
            // Logged before the answer, so the line is in agent.log by the time the CLI returns; the answer's write and
            // the last good copy after it are not in it (the switch benchmark times the whole request from outside).
            _logger.LogInformation("activation of {App} release {Release} ({Outcome}): {Trace}", app, request.ReleaseId,
                JsonNamingPolicy.SnakeCaseLower.ConvertName(result.Outcome.ToString()), trace);
            progress.Result(new ActivationResultEvent(result));
            CatchUpLastGood();
        }
        finally
        {
            lock (_activations) _activations.Remove(key);
        }
    }

    private IResult CancelActivation(string app, string release)
    {
        CancellationTokenSource? running;
        lock (_activations) _activations.TryGetValue(ActivationKey(app, release), out running);
        if (running is null) return Refuse(StatusCodes.Status404NotFound, $"no activation of {app} release {release} is running");
        running.Cancel();
        return Results.Json(new ActivationCancelling(release), Json.Options);
    }

    private static IResult Refuse(int status, string error) => Results.Json(new AgentRefusal(error), Json.Options, statusCode: status);

    private static string ActivationKey(string app, string release) => app + "/" + release;

    private async Task<ActivationResult> ActivateLockedAsync(string app, ActivateRequest request, IDeployProgress progress, ActivationTrace trace, CancellationToken cancellationToken)
    {
        // env is not resolved here (the agent has not the deployer's environment): the release's env file gives it.
        var config = ReleaseEnvironmentFile.Apply(ConfigLoader.Load(request.Layers, resolveEnvironment: false), request.ReleaseId);
        trace.Mark("config");
        if (config.App != app) return ActivationResult.NotLive($"the config names app '{config.App}', not '{app}'");
        if (config.Settings is not InstanceSettings settings)
            return ActivationResult.NotLive($"strategy: {config.Strategy} runs no instances under the agent");
        CutoverConfig? previousConfig = null;
        if (request.Restart || request.Scale is not null) return await RestartOrScaleAsync(app, request, config, progress, cancellationToken);
        if (await EnsureCertificateAsync(config, settings.Proxy, progress, cancellationToken) is { } noCertificate)
            return ActivationResult.NotLive(noCertificate);
        trace.Mark("certificate");
        if (!_apps.TryGetValue(app, out var runtime))
        {
            // A route another app holds, or an address it uses the other way (plain / TLS), is refused here, before anything starts.
            runtime = await CreateRuntimeAsync(config, request.Roles, cancellationToken);
            _apps[app] = runtime;
            progress.Info($"proxy for {app} listening on {runtime.Proxy.Listen}");
        }
        else
        {
            previousConfig = runtime.Config;
            if (!SameRoles(runtime.Roles, request.Roles))
                return ActivationResult.NotLive($"this host's roles changed from {RolesText(runtime.Roles)} to {RolesText(request.Roles)}; run `cutover stop` and restart the agent to change them");
            if (await runtime.ReconfigureAsync(config, cancellationToken) is { } refused) return ActivationResult.NotLive(refused);
        }
        trace.Mark("reconfigure");

        string? error;
        var outcome = ActivationOutcome.NotLive;
        var previousRelease = (Id: runtime.ReleaseId, Dir: runtime.ReleaseDir);
        if (runtime.IsEmpty)
        {
            progress.PhaseStarted("start");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            // router: haproxy is checked (socket level, backend, algorithm) before any instance starts.
            var haproxy = BlueGreen.HaproxyRouter.For(settings);
            error = haproxy is null ? null : await haproxy.CheckAsync(cancellationToken);
            error ??= await runtime.StartAllAsync(request.ReleaseId, request.ReleaseDir, cancellationToken);
            if (error is null && settings is BlueGreenSettings)
                error = await new BlueGreen.BlueGreenSwitch(runtime, WarmSetOf(app), progress).RouteLiveSetAsync(cancellationToken);
            else if (error is null && haproxy is not null)
                error = await haproxy.RouteAsync(runtime.RunsWeb ? runtime.Slots.Select(s => s!.Endpoint!).ToArray() : [], settings.Proxy.DrainTimeout, cancellationToken);
            if (error is null) progress.PhaseCompleted("start", clock.Elapsed, $"{runtime.AllSlots.Count()} instances ready");
            else progress.PhaseFailed("start", clock.Elapsed, error);
        }
        else if (settings is BlueGreenSettings)
        {
            error = await new BlueGreen.BlueGreenSwitch(runtime, WarmSetOf(app), progress).RunAsync(request.ReleaseId, request.ReleaseDir, cancellationToken);
            // Green is switched to as one set, so a failure is either before the switch or switched back after it.
            if (error is not null && runtime.ReleaseId != request.ReleaseId && error.Contains("switched back")) outcome = ActivationOutcome.RolledBack;
        }
        else if (settings is RollingSettings rolling)
        {
            var result = await new RollingUpdate(runtime, progress).RunAsync(request.ReleaseId, request.ReleaseDir, cancellationToken);
            var was = runtime.AllSlots.FirstOrDefault(sl => sl is not null && sl.Spec.ReleaseId != request.ReleaseId)?.Spec.ReleaseId;
            outcome = result.Succeeded ? ActivationOutcome.Live
                : result.Cancelled ? ActivationOutcome.Cancelled
                : result.RolledBack ? ActivationOutcome.RolledBack
                : result.Replaced == 0 ? ActivationOutcome.NotLive
                : ActivationOutcome.Paused;
            error = result.Succeeded ? null
                : result.Cancelled ? $"cancelled; every instance is back on release {runtime.ReleaseId}"
                : result.RolledBack ? $"{result.Error}; every instance is back on release {was}"
                : result.Replaced == 0 ? $"{result.Error}; no instance was replaced, release {was} keeps serving"
                : $"{result.Error}; {result.Replaced} of {runtime.AllSlots.Count()} instances run the new release, the others {was} (failure_action {rolling.Rolling.FailureAction.ToString().ToLowerInvariant()})";
        }
        else
        {
            throw new InvalidOperationException($"no activation for {settings.GetType().Name}");
        }
        trace.Mark("instances");
        // The release is live: the config's types and counts (new types, removed ones, changed instances) follow it.
        if (error is null && previousConfig is not null && await runtime.ApplySizesAsync(progress, cancellationToken) is { } resizeProblem)
            (outcome, error) = await PutBackAfterFailedResizeAsync(runtime, previousConfig, previousRelease, request.ReleaseId, resizeProblem, progress);
        // A release that did not take keeps the config of the one that still serves, for restarts and `start`.
        if (error is not null && previousConfig is not null && outcome != ActivationOutcome.Paused)
            await runtime.ReconfigureAsync(previousConfig, CancellationToken.None);
        trace.Mark("sizes");
        // Durable before the answer (the CLI moves `current` once it has it, and a machine crash must not leave the agent
        // restoring another release than `current` names); the last good copy only after it.
        Save(runtime, request.Layers, stopped: false, copyLater: true);
        trace.Mark("state");
        await _acme.RetireAsync(app, runtime.Settings.Proxy.Tls?.Acme);
        trace.Mark("acme");
        if (error is null) return ActivationResult.Live;
        var instances = runtime.AllSlots.Where(s => s is not null).GroupBy(s => s!.Spec.ReleaseId).ToDictionary(g => g.Key, g => g.Count());
        return new ActivationResult(outcome, error, instances);
    }

    /// <summary>
    /// The release went live but its types or counts could not be applied (an added instance did not start): a deploy
    /// is all-or-nothing, so the previous release's config and instances come back (the same rolling or blue-green
    /// move, never cancelled), then its types and counts. RolledBack when that worked; Paused (both releases named)
    /// when even that failed.
    /// </summary>
    private async Task<(ActivationOutcome, string)> PutBackAfterFailedResizeAsync(AppRuntime runtime, CutoverConfig previousConfig,
        (string? Id, string? Dir) previous, string releaseId, string resizeProblem, IDeployProgress progress)
    {
        var failed = $"release {releaseId} went live, but changing the process types and counts failed: {resizeProblem}";
        if (previous.Id is null || previous.Dir is null) return (ActivationOutcome.NotLive, failed);
        progress.Warning($"{failed}; putting every instance back on release {previous.Id}");
        var problem = await runtime.ReconfigureAsync(previousConfig, CancellationToken.None);
        if (problem is null && runtime.Settings is BlueGreenSettings)
            problem = await new BlueGreen.BlueGreenSwitch(runtime, WarmSetOf(runtime.Config.App), progress).RunAsync(previous.Id, previous.Dir, CancellationToken.None);
        else if (problem is null)
            problem = (await new RollingUpdate(runtime, progress).RunAsync(previous.Id, previous.Dir, CancellationToken.None)).Error;
        problem ??= await runtime.ApplySizesAsync(progress, CancellationToken.None);
        return problem is null
            ? (ActivationOutcome.RolledBack, $"{failed}; every instance is back on release {previous.Id}")
            : (ActivationOutcome.Paused, $"{failed}; putting release {previous.Id} back failed too: {problem}");
    }

    /// <summary>
    /// With proxy.tls.acme, the certificate for proxy.hosts before the app's routes reach the TLS listener, so the first
    /// HTTPS request never waits for issuance or meets a wrong certificate. The stored one when it fits and is not due,
    /// else obtained now (http-01 answered by the plain listener, started here if no app uses it yet). Returns why not;
    /// then nothing of the app has changed and the running release keeps serving.
    /// </summary>
    private async Task<string?> EnsureCertificateAsync(CutoverConfig config, ProxyConfig proxy, IDeployProgress? progress, CancellationToken cancellationToken)
    {
        if (proxy.Tls?.Acme is not { } acme) return null;
        try
        {
            await _listeners.EnsurePlainListenerAsync(proxy.Listen, cancellationToken);
            var manager = _acme.ManagerFor(config.App, acme);
            await manager.EnsureAsync(proxy.Hosts, cancellationToken);
            var status = manager.Status;
            progress?.Info($"certificate for {string.Join(", ", status.Names)} from {acme.Directory.Host}, valid until {status.NotAfter:u}");
            return null;
        }
        catch (Acme.AcmeException e)
        {
            // A listener started only for the challenge goes again (the app's own routes, if any, keep theirs), and so
            // does this config's manager unless the app already runs with it: no renewal for what nothing serves.
            await _listeners.StopUnusedAsync();
            await _acme.RetireAsync(config.App, _apps.GetValueOrDefault(config.App)?.Settings.Proxy.Tls?.Acme);
            _logger.LogError("certificate for {App}: {Error}", config.App, e.Message);
            return $"no certificate from {acme.Directory}: {e.Message}";
        }
    }

    private async Task<IResult> StopAppAsync(string app, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_handedOver) return Refuse(StatusCodes.Status503ServiceUnavailable, HandedOverMessage);
            if (!_apps.TryGetValue(app, out var runtime)) return Refuse(StatusCodes.Status404NotFound, $"the agent runs no app '{app}'");
            await runtime.StopAllAsync(cancellationToken);
            Save(app, _records[app].ConfigLayers, stopped: true);
            return Results.Json(new AppStopped(app), Json.Options);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<IResult> StartAppAsync(string app, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_handedOver) return Refuse(StatusCodes.Status503ServiceUnavailable, HandedOverMessage);
            if (!_apps.TryGetValue(app, out var runtime) || !_records.TryGetValue(app, out var record) || record.ReleaseId is null)
                return Refuse(StatusCodes.Status404NotFound, $"the agent has no release of '{app}' to start; deploy one");
            if (!runtime.IsEmpty) return Results.Json(new AppStarted(app, Already: true), Json.Options);
            var error = await runtime.StartAllAsync(record.ReleaseId, record.ReleaseDir!, cancellationToken);
            if (error is not null) return Refuse(StatusCodes.Status500InternalServerError, error);
            Save(app, record.ConfigLayers, stopped: false);
            return Results.Json(new AppStarted(app), Json.Options);
        }
        finally
        {
            _gate.Release();
        }
    }

    private BlueGreen.WarmSetKeeper WarmSetOf(string app) => _warmSets.GetOrAdd(app, _ => new BlueGreen.WarmSetKeeper());

    private static bool SameRoles(IReadOnlyList<string>? a, IReadOnlyList<string>? b) =>
        a is null ? b is null : b is not null && a.Order(StringComparer.Ordinal).SequenceEqual(b.Order(StringComparer.Ordinal));

    private static string RolesText(IReadOnlyList<string>? roles) => roles is null ? "every role (no fleet)" : $"[{string.Join(", ", roles)}]";

    private async Task<AppRuntime> CreateRuntimeAsync(CutoverConfig config, IReadOnlyList<string>? roles, CancellationToken cancellationToken, IReadOnlyDictionary<string, ScaledCount>? scaled = null)
    {
        var runtime = await AppRuntime.CreateAsync(config, _home.Path, _http, _spawnGate, _loggers, _listeners, cancellationToken, roles, scaled);
        runtime.InstancesChanged += SaveInstances;
        runtime.Proxy.Metrics = _metrics.ForApp(config.App);
        runtime.InstanceRestarted += (app, process) => _metrics.InstanceRestarted(app, process);
        return runtime;
    }

    private void Save(string app, IReadOnlyList<string> configFiles, bool stopped) => Save(_apps[app], configFiles, stopped);

    /// <summary>An instance is starting, started or gone: the state names it before it can be orphaned.</summary>
    private void SaveInstances(AppRuntime runtime)
    {
        lock (_stateGate)
        {
            var record = _records.GetValueOrDefault(runtime.Config.App);
            Save(runtime, record?.ConfigLayers ?? runtime.Config.Files, record?.Stopped ?? false);
        }
    }

    /// <param name="copyLater">The activation's own write: state.json durably now, its copy once the answer is written.</param>
    private void Save(AppRuntime runtime, IReadOnlyList<string> configFiles, bool stopped, bool copyLater = false)
    {
        lock (_stateGate)
        {
            // During an upgrade the state on disk stays what it was (the new agent writes it once it commits); after it,
            // the leaving agent's instances are the new one's and its own disposals must not write them out.
            if (!StateWritable) return;
            var app = runtime.Config.App;
            _records[app] = new AppRecord
            {
                App = app,
                ConfigFile = configFiles[^1],
                ConfigFiles = configFiles.Count > 1 ? configFiles : null,
                ReleaseId = runtime.ReleaseId ?? _records.GetValueOrDefault(app)?.ReleaseId,
                ReleaseDir = runtime.ReleaseDir ?? _records.GetValueOrDefault(app)?.ReleaseDir,
                Stopped = stopped,
                Roles = runtime.Roles,
                Scaled = runtime.Scaled.Count == 0 ? null : runtime.Scaled,
                Maintenance = runtime.Proxy.Gate.Maintenance,
                PausedUntil = runtime.Proxy.Gate.PausedUntil,
                // Every process, the warm blue-green set and a deploy's half-started ones too: a restarted agent must
                // find every process it left, to end it. One still being spawned has no pid to be found by yet: it is
                // recorded once it has one (until then, and always, the restarted agent's environment sweep finds it).
                // Pid read once: the instance's own thread may end its process meanwhile.
                Instances = runtime.Running.Select(s => (Instance: s, s.Pid)).Where(x => x.Pid is not null)
                    .Select(x => new InstanceRecord(x.Instance.Spec.Id, x.Pid, x.Instance.Spec.Port, x.Instance.Spec.ReleaseId, ProcStat.Read(x.Pid!.Value)?.StartTicks, x.Instance.Spec.Process)).ToList(),
            };
            WriteState(copyLater);
        }
    }

    /// <summary>
    /// state.json as <see cref="_records"/> say, written only when that changes anything; durably (both files) when what
    /// an app runs changed since the last durable write, else as a change of pids (<see cref="AgentStateStore.WriteInstances"/>).
    /// A blue-green deploy so writes durably once, at its switch, where it used to write 4 fsyncs twice per green instance.
    /// </summary>
    private void WriteState(bool copyLater)
    {
        // By name: the dictionary's order is not stable, and a reordering is no change.
        var apps = _records.Values.OrderBy(a => a.App, StringComparer.Ordinal).ToList();
        var text = AgentStateStore.Serialize(new AgentState { Apps = apps });
        if (text == _stateWritten) return;
        var runs = AgentStateStore.Serialize(new AgentState { Apps = apps.Select(a => a with { Instances = [] }).ToList() });
        if (runs == _stateDurable)
        {
            // A state.json written without fsync may be torn by a machine crash: the copy must name what runs first.
            CatchUpLastGood();
            _store.WriteInstances(text);
        }
        else if (copyLater)
        {
            _store.WriteState(text);
            _lastGoodBehind = text;
        }
        else
        {
            _store.Write(text);
            _lastGoodBehind = null;
        }
        (_stateWritten, _stateDurable) = (text, runs);
    }

    /// <summary>
    /// The last good copy brought up to the durable state.json an activation answered after. A crash before it leaves
    /// state.json whole and durable, which is what a restart reads (and its first write renews the copy).
    /// </summary>
    private void CatchUpLastGood()
    {
        lock (_stateGate)
        {
            if (_lastGoodBehind is not { } text) return;
            _lastGoodBehind = null;
            // Handed over meanwhile: the files are the new agent's, which writes both when it commits.
            if (StateWritable) _store.WriteLastGood(text);
        }
    }

    /// <summary>Starts every app the state names, from the release it last ran; leftovers of a killed agent go first.</summary>
    private async Task RestoreAsync(CancellationToken cancellationToken)
    {
        var read = _store.Read();
        if (read.Warning is { } warning)
        {
            _warnings.Add(warning);
            _logger.LogError("state: {Warning}", warning);
        }
        // Processes of a killed agent cannot be supervised again (their pipes are gone): they go, the ones a deploy
        // was starting when it died included. Containers can: AdoptAllAsync takes them over where they run.
        // A container's recorded pid is its init, which AdoptAllAsync takes over: only process apps' pids are orphans.
        var processInstances = read.State.Apps.Where(a => !OutlivesAgent(a)).SelectMany(a => a.Instances);
        foreach (var orphan in await OrphanInstances.StopAllAsync(_home, processInstances, cancellationToken))
            _logger.LogWarning("stopped {Orphan}, left running by a previous agent", orphan);
        foreach (var record in read.State.Apps)
        {
            _records[record.App] = record;
            try
            {
                var runtime = await RebuildAppAsync(record, cancellationToken);
                if (!record.Stopped && record.ReleaseId is not null && Directory.Exists(record.ReleaseDir))
                {
                    var error = await runtime.AdoptAllAsync(record.ReleaseId, record.ReleaseDir!, cancellationToken);
                    if (error is not null) _logger.LogError("restoring {App}: {Error}", record.App, error);
                }
                else
                {
                    // Nothing of the app is meant to run (stopped, or never got a release): no container either.
                    await runtime.RemoveLeftoversAsync(cancellationToken);
                }
                Save(record.App, record.ConfigLayers, record.Stopped);
            }
            catch (Exception e) when (e is ConfigException or DeployException or IOException)
            {
                _logger.LogError("cannot restore {App}: {Error}", record.App, e.Message);
            }
        }
    }

    /// <summary>
    /// An app's runtime as a recorded state describes it, without its instances: the config as a restart reads it
    /// (every -c layer, the release's env file under run.env, the host's roles, the scaled counts), its certificate,
    /// its release, maintenance and what is left of a pause. A restart and a takeover both start from here.
    /// </summary>
    private async Task<AppRuntime> RebuildAppAsync(AppRecord record, CancellationToken cancellationToken)
    {
        var config = ReleaseEnvironmentFile.Apply(ConfigLoader.Load(record.ConfigLayers, resolveEnvironment: false), record.ReleaseId);
        // The stored certificate, loaded before 443 routes the app (no new order unless it is due); without
        // one the app is routed anyway and the background loop keeps trying, as logged.
        if (config.Settings is InstanceSettings { Proxy: var proxy })
            await EnsureCertificateAsync(config, proxy, progress: null, cancellationToken);
        var runtime = await CreateRuntimeAsync(config, record.Roles, cancellationToken, record.Scaled);
        _apps[record.App] = runtime;
        runtime.ReleaseId = record.ReleaseId;
        runtime.ReleaseDir = record.ReleaseDir;
        // Maintenance stays on; a pause only for what is left of its timeout.
        runtime.Proxy.Gate.SetMaintenance(record.Maintenance);
        if (record.PausedUntil - DateTimeOffset.UtcNow is { } left && left > TimeSpan.Zero) runtime.Proxy.Gate.PauseFor(left);
        return runtime;
    }

    /// <summary>
    /// Instances that outlive the agent (containers, which AdoptAllAsync takes over), or a config that cannot be read
    /// (then its pids are not touched; the environment sweep still finds its processes).
    /// </summary>
    private static bool OutlivesAgent(AppRecord record)
    {
        try
        {
            // A config that no longer runs instances cannot take any over: what it left are orphans.
            return ConfigLoader.Load(record.ConfigLayers, resolveEnvironment: false).Settings is InstanceSettings settings && settings.Runtime.InstancesOutliveAgent;
        }
        catch (Exception e) when (e is ConfigException or IOException)
        {
            return true;
        }
    }

    private AppView Describe(AppRuntime runtime) => new(
        runtime.Config.App,
        runtime.ReleaseId,
        runtime.Proxy.Listen.ToString(),
        runtime.Proxy.Failed,
        _warmSets.GetValueOrDefault(runtime.Config.App)?.Current is { } warm ? new WarmSetView(warm.ReleaseId, warm.Until, warm.Instances.Length) : null,
        runtime.Groups.SelectMany(g => g.Slots.Select((s, i) => s is null
            ? new InstanceView(g.IsWeb ? $"{runtime.Config.App}-{i}" : $"{runtime.Config.App}-{g.Name}-{i}", null, null, null, null, null, "stopped", null, 0, 0, null, g.Name)
            : new InstanceView(
                s.Spec.Id,
                s.Spec.ReleaseId,
                s.Pid,
                s.Spec.ServesHttp ? s.Spec.Port : null,
                s.Spec.ServesHttp ? s.Endpoint?.ToString() : null,
                s.Description,
                JsonNamingPolicy.SnakeCaseLower.ConvertName(s.State.ToString()),
                s.Since is { } since ? Math.Round((DateTimeOffset.UtcNow - since).TotalSeconds, 1) : null,
                s.RssBytes,
                s.Restarts,
                s.LastProblem,
                g.Name))).ToList(),
        new ProxyCountersView(runtime.Proxy.Served, runtime.Proxy.Failed, runtime.Proxy.BodyTooLarge, runtime.Proxy.HeadersTooLarge, runtime.Proxy.TimedOut),
        runtime.Settings.Proxy.Tls?.Acme is { } acme ? _acme.StatusOf(runtime.Config.App, acme) : null,
        new TrafficView(runtime.Proxy.Gate.Maintenance is not null, runtime.Proxy.Gate.PausedUntil, runtime.Proxy.Gate.Held),
        runtime.Groups.Select(g => new ProcessCountView(g.Name, g.Slots.Length, AppRuntime.ConfiguredInstances(runtime.Settings, g.Name), runtime.Scaled.ContainsKey(g.Name))).ToList(),
        _deploying.GetValueOrDefault(runtime.Config.App)?.View);

    private async Task ShutdownAsync()
    {
        // Once: the run's end calls it, and DisposeAsync again for a run that ended some other way.
        if (_shutDown) return;
        _shutDown = true;
        // Handed over: stop accepting first (the new agent accepts on the same sockets), let the requests in flight
        // finish through this proxy while the instances still serve, then let the apps go (nothing of them is stopped).
        if (_metricsEndpoint is not null)
        {
            // First: after a handover the new agent binds the same address as soon as this one lets it go.
            await _metricsEndpoint.DisposeAsync();
            _metricsEndpoint = null;
        }
        if (_handedOver)
        {
            // agent.sock first: every command from here reaches the new agent, never one that is leaving.
            if (_web is not null)
            {
                await _web.StopAsync();
                await _web.DisposeAsync();
                _web = null;
            }
            await LeaveAfterHandoverAsync();
        }
        _logger.LogInformation("agent stopping: draining {Count} apps", _apps.Count);
        foreach (var runtime in _apps.Values) await runtime.LeaveRunningAsync();
        _apps.Clear();
        await _listeners.DisposeAsync();
        await _acme.DisposeAsync();
    }

    /// <summary>
    /// agent.sock after a handover or a let-go: the other agent accepts on this very socket, and Socket.Dispose may
    /// shutdown(2) it, which stops the other agent's accepts too (seen once the leaving agent no longer crashed before
    /// its DisposeAsync got here). Only this process's descriptor is closed.
    /// </summary>
    private void CloseSharedControlSocket()
    {
        if (_controlSocket is null) return;
        var fd = (int)_controlSocket.SafeHandle.DangerousGetHandle();
        _controlSocket.SafeHandle.SetHandleAsInvalid();
        Platform.LibC.Close(fd);
        _controlSocket = null;
    }

    public async ValueTask DisposeAsync()
    {
        if (_web is not null)
        {
            await _web.StopAsync();
            await _web.DisposeAsync();
        }
        await ShutdownAsync();
        _http.Dispose();
        if (_handedOver) CloseSharedControlSocket();
        else _controlSocket?.Dispose();
        // The socket and agent.pid are the new agent's after an upgrade (the same socket, its pid).
        if (!_handedOver)
        {
            File.Delete(_home.Socket);
            File.Delete(_home.AgentPid);
        }
        _homeLock.Dispose();
        _systemd.Dispose();
    }
}
