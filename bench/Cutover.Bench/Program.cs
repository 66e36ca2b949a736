using Cutover.Bench;

// `stage SRC DEST [LINK_BASE]` runs the stager alone in this process (for profiling); anything else runs the benchmark.
if (args is ["stage", var src, var dest, .. var rest])
{
    var result = new Cutover.Staging.ReleaseStager().Stage(new Cutover.Staging.DirectoryArtifact(src), dest, rest.FirstOrDefault(), CancellationToken.None);
    Console.WriteLine($"{result.Files} files, {result.LinkedFiles} linked, {result.CopiedFiles} copied");
    return 0;
}
// The switch benchmark runs Cutover's proxy in this process, set up as the agent sets up its own (the proxy benchmark runs a real agent).
if (args is [] or ["switch", ..] or ["proxy"] or ["proxy-serve"] || (args is [var runs] && int.TryParse(runs, out _)))
    Cutover.Platform.InlineSocketCompletions.Enable();
// `switch [builtin|nginx|haproxy|cli|agent ...] [ROUNDS]`: the blue-green switch benchmark alone, all of it or the rows
// named (agent: a real agent alone, each command split into green, switch and the agent's rest, with its CPU and fsyncs),
// ROUNDS deploys and rollbacks each (6). Progress and each row as measured, then the README block.
if (args is ["switch", .. var switchArgs])
{
    var rounds = switchArgs.Where(a => int.TryParse(a, out _)).Select(int.Parse).DefaultIfEmpty(6).Last();
    var switchRows = switchArgs.Where(a => !int.TryParse(a, out _)).ToArray();
    if (rounds < 1)
    {
        Console.Error.WriteLine($"switch: ROUNDS must be at least 1, got {rounds}");
        return 2;
    }
    if (switchRows.Except(["builtin", "nginx", "haproxy", "cli", "agent"]).FirstOrDefault() is { } unknown)
    {
        Console.Error.WriteLine($"switch: '{unknown}' is not one of builtin, nginx, haproxy, cli, agent");
        return 2;
    }
    var block = await SwitchBenchmark.RunAsync(Directory.GetCurrentDirectory(), switchRows, Console.Out, rounds);
    Console.WriteLine();
    Console.WriteLine(block);
    return 0;
}
if (args is ["proxy-serve"])
{
    await ProxyBenchmark.ServeAsync();
    return 0;
}
if (args is ["proxy"])
{
    Console.WriteLine(await ProxyBenchmark.RunAsync(Directory.GetCurrentDirectory()));
    return 0;
}
// `lint-files DIR` is the child process the lint benchmark times; `lint-generate DIR` writes its input (for profiling);
// `lint [RUNS]` runs that benchmark alone.
if (args is ["lint-files", var lintDir])
    return LintBenchmark.LintFiles(lintDir);
if (args is ["lint-generate", var lintOut])
{
    Console.WriteLine($"{LintBenchmark.Generate(lintOut)} bytes");
    return 0;
}
if (args is ["lint", .. var lintArgs])
    return LintBenchmark.Run(lintArgs);
// `tls [RUNS]` runs the TLS termination benchmark (Cutover's agent vs nginx) alone; `tls-serve` keeps its proxies up.
if (args is ["tls-serve"])
{
    await TlsProxyBenchmark.ServeAsync();
    return 0;
}
// `tls-floor-serve PORT CERT KEY BACKEND_PORT`: the least .NET does to end TLS and relay a GET (TlsFloorServer), to
// measure by hand beside `tls-serve`'s agent and nginx (its backend port is in the printed nginx's config).
if (args is ["tls-floor-serve", var floorPort, var floorCert, var floorKey, var floorBackend])
{
    Cutover.Platform.InlineSocketCompletions.Enable();
    return await TlsFloorServer.RunAsync(int.Parse(floorPort), floorCert, floorKey, int.Parse(floorBackend));
}
// `tls-openssl-floor-serve PORT CERT KEY BACKEND_PORT`: the same floor on Proxy/OpenSsl (OpenSSL without SslStream).
if (args is ["tls-openssl-floor-serve", var osslPort, var osslCert, var osslKey, var osslBackend])
{
    Cutover.Platform.InlineSocketCompletions.Enable();
    return await TlsFloorServer.RunAsync(int.Parse(osslPort), osslCert, osslKey, int.Parse(osslBackend), openSsl: true);
}
if (args is ["tls", .. var tlsArgs])
    return await TlsProxyBenchmark.RunAsync(tlsArgs);
// `upgrade [ROUNDS]`: the agent's upgrade vs restarting it vs `nginx -s reload`, under load (issue 12).
if (args is ["upgrade", .. var upgradeArgs])
    return await UpgradeBenchmark.RunAsync(upgradeArgs);
// `metrics [ROUNDS]`: the proxy with the agent's metrics on and off, and the two libraries' per-request cost (issue 15).
if (args is ["metrics", .. var metricsArgs])
    return await MetricsBenchmark.RunAsync(metricsArgs);
// `startup [RUNS]`: whole-process times of status, releases, rollback, --version, probe --help vs pm2 and ln -sfn (issue 14).
if (args is ["startup", .. var startupArgs])
    return StartupBenchmark.Run(startupArgs);
// `staging [RUNS]` runs the staging and rollback benchmark alone.
if (args is ["staging", .. var stagingArgs])
    return await StagingBenchmark.RunAsync(stagingArgs, stagingOnly: true);
return await StagingBenchmark.RunAsync(args);
