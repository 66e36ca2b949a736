using System.Text.Json;
using Cutover.Config;
using Cutover.Deploy;
using Cutover.Fleet;
using Cutover.Progress;
using Cutover.Releases;
using Cutover.Tests.Support;

namespace Cutover.Tests.Fleet;

/// <summary>
/// The fleet's session protocol without SSH: every request and answer written and read by the same records on
/// both sides, and the clear error a line either side cannot read turns into (naming the host).
/// </summary>
public class RemoteSessionWireTests : IDisposable
{
    private static readonly FleetHost Web1 = new("web1", "10.0.0.1", 22, "deploy", "/srv/shop");
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<SessionRequest> Requests() =>
    [
        new SessionRequest.Hashes(),
        new SessionRequest.Prepare("/srv/shop/.cutover/uploads/x", "abc123", "cutover deploy ./build", DateTimeOffset.Parse("2026-11-30T03:00:00Z"), 12.5),
        new SessionRequest.Prepare("/srv/shop/.cutover/uploads/y", null, "cutover deploy ./build", DateTimeOffset.Parse("2026-11-30T03:00:00Z"), 0),
        new SessionRequest.Migrate([new MigrationPayload("001_init.sql", Convert.ToBase64String("create table t (id int);"u8))], 5000, 0, 5, "DATABASE_URL",
            "postgres://u@db/shop", "web1 (fleet release r1, deployed by ci@build)"),
        new SessionRequest.BeforeSwitch(),
        new SessionRequest.Switch(),
        new SessionRequest.Undo("web2 failed its health check"),
        new SessionRequest.Abort("web2 could not stage"),
        new SessionRequest.Close(),
    ];

    [Theory]
    [MemberData(nameof(Requests))]
    public void Every_request_round_trips_as_the_same_kind_and_fields(SessionRequest request)
    {
        var line = JsonSerializer.Serialize(request, Json.Compact);
        var read = Json.TryRead<SessionRequest>(line, out var problem);
        Assert.True(read is not null, problem);
        Assert.Equal(request.GetType(), read.GetType());
        Assert.Equal(line, JsonSerializer.Serialize(read, Json.Compact));
    }

    [Fact]
    public void Every_answer_round_trips_and_a_failure_reads_as_any_answer()
    {
        AssertRoundTrip(new SessionAnswer.LiveHashes(["aa", "bb"]), a => Assert.Equal(["aa", "bb"], a.Sha256s));
        AssertRoundTrip(new SessionAnswer.Prepared("20261130_030000", "20261129_230000"), a => Assert.Equal("20261129_230000", a.Previous));
        AssertRoundTrip(new SessionAnswer.Prepared("20261130_030000", null), a => Assert.Null(a.Previous));
        AssertRoundTrip(new SessionAnswer.Migrated(["001_init.sql"]), a => Assert.Equal(["001_init.sql"], a.Applied));
        AssertRoundTrip(new SessionAnswer.Done(), Assert.NotNull);

        // The host answers an unreadable or failed request before it knows (or whatever) the answer type: any reads it.
        var failed = Write(SessionResult<SessionAnswer.Done>.Failed("root locked by pid 7", locked: true));
        var read = RemoteSessionClient.Interpret<SessionAnswer.Prepared>(Web1, failed, new SilentProgress())!;
        Assert.Null(read.Answer);
        Assert.Equal("root locked by pid 7", read.Error);
        Assert.True(read.Locked);
    }

    private static void AssertRoundTrip<TAnswer>(TAnswer answer, Action<TAnswer> check) where TAnswer : class
    {
        var read = RemoteSessionClient.Interpret<TAnswer>(Web1, Write(new SessionResult<TAnswer>(answer)), new SilentProgress());
        Assert.NotNull(read);
        Assert.Null(read.Error);
        check(read.Answer!);
    }

    private static string Write<TAnswer>(SessionResult<TAnswer> result) where TAnswer : class
    {
        var text = new StringWriter();
        new JsonProgress(text).Result(result);
        return text.ToString().TrimEnd();
    }

    [Fact]
    public void A_host_s_progress_is_replayed_under_its_name()
    {
        var text = new StringWriter();
        var host = new JsonProgress(text);
        host.PhaseStarted("stage");
        host.Warning("disk 91% full");
        var seen = new StringWriter();
        var deployer = new HostProgress("web1", new JsonProgress(seen), new Lock());
        foreach (var line in text.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries))
            Assert.Null(RemoteSessionClient.Interpret<SessionAnswer.Done>(Web1, line, deployer));
        Assert.Equal("""{"event":"phase_started","phase":"web1 stage"}""" + "\n" + """{"event":"warning","message":"web1: disk 91% full"}""" + "\n",
            seen.ToString().ReplaceLineEndings("\n"));
    }

    /// <summary>A line the deployer cannot read was once relayed as output or skipped; now it fails the host, named.</summary>
    [Theory]
    [InlineData("Segmentation fault (core dumped)")]
    [InlineData("""{"event":"progress","percent":40}""")]
    [InlineData("""{"event":"result","ok":true,"release":"r1"}""")]
    [InlineData("""{"event":"phase_failed","phase":"stage"}""")]
    public void A_line_from_a_host_that_is_neither_progress_nor_a_result_fails_the_host_by_name(string line)
    {
        var error = Assert.Throws<HostException>(() => RemoteSessionClient.Interpret<SessionAnswer.Prepared>(Web1, line, new SilentProgress()));
        Assert.Same(Web1, error.Host);
        Assert.StartsWith("web1: sent a line that is neither a progress event nor a result (", error.Message);
        Assert.Contains(line, error.Message);
    }

    [Fact]
    public void The_error_a_host_s_cutover_ended_with_fails_the_host_with_its_words()
    {
        var text = new StringWriter();
        new JsonProgress(text).Failed("config", ["cutover.yml:3:1: unknown key 'rooot'"]);
        var error = Assert.Throws<HostException>(() => RemoteSessionClient.Interpret<SessionAnswer.Done>(Web1, text.ToString().TrimEnd(), new SilentProgress()));
        Assert.Equal("web1: the remote session failed (config): cutover.yml:3:1: unknown key 'rooot'", error.Message);
    }

    /// <summary>
    /// The host side, for real (RemoteSession over a real root and ReleaseDeployer): a request it cannot read is
    /// answered with a result saying so, and the session ends there instead of crashing or guessing.
    /// </summary>
    [Fact]
    public async Task A_request_the_host_cannot_read_is_answered_with_the_reason_and_ends_the_session()
    {
        var root = _dir.Combine("root");
        var config = ConfigLoader.Load(AppFactory.WriteConfig(_dir.Path, root));
        using var http = new HttpClient();
        var output = new StringWriter();
        var progress = new JsonProgress(output);
        var input = new StringReader("""{"op":"hashes"}""" + "\n" + """{"op":"deploy_everything","now":true}""" + "\n" + """{"op":"close"}""" + "\n");
        var session = new RemoteSession(new DeployPipeline(config, progress, http), new RootLayout(root), input, progress);

        await session.RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        var hashes = RemoteSessionClient.Interpret<SessionAnswer.LiveHashes>(Web1, lines[0], new SilentProgress())!;
        Assert.Empty(hashes.Answer!.Sha256s);
        var refused = RemoteSessionClient.Interpret<SessionAnswer.Done>(Web1, lines[1], new SilentProgress())!;
        Assert.Null(refused.Answer);
        Assert.Contains("cannot read the request (Read unrecognized type discriminator id 'deploy_everything'", refused.Error);
        Assert.EndsWith("; the session ends", refused.Error);
    }

    /// <summary>The manifest travels by SFTP, not on the session: read strictly too, a damaged one fails `prepare` with why.</summary>
    [Fact]
    public async Task A_damaged_manifest_fails_prepare_with_the_reason_and_the_session_goes_on()
    {
        var root = _dir.Combine("root");
        var upload = _dir.Combine("root", ".cutover", "uploads", "d1");
        Directory.CreateDirectory(upload);
        File.WriteAllText(Path.Combine(upload, ReleaseManifest.FileName), """{"description":"./build"}""");
        var config = ConfigLoader.Load(AppFactory.WriteConfig(_dir.Path, root));
        using var http = new HttpClient();
        var output = new StringWriter();
        var progress = new JsonProgress(output);
        var prepare = JsonSerializer.Serialize<SessionRequest>(new SessionRequest.Prepare(upload, null, "test", DateTimeOffset.UtcNow, 0), Json.Compact);
        // A pipe the test holds open, as the deployer's SSH channel is: an EOF would end the session by itself.
        var pipe = new System.IO.Pipelines.Pipe();
        using var input = new StreamReader(pipe.Reader.AsStream());
        await pipe.Writer.WriteAsync(System.Text.Encoding.UTF8.GetBytes(prepare + "\n" + """{"op":"close"}""" + "\n"));

        await new RemoteSession(new DeployPipeline(config, progress, http), new RootLayout(root), input, progress).RunAsync(CancellationToken.None)
            .WaitAsync(TimeSpan.FromSeconds(30));
        await pipe.Writer.CompleteAsync();

        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var prepared = RemoteSessionClient.Interpret<SessionAnswer.Prepared>(Web1, lines[^2], new SilentProgress())!;
        Assert.Null(prepared.Answer);
        Assert.Contains("is not a release manifest (", prepared.Error);
        Assert.Contains("entries", prepared.Error);
        Assert.NotNull(RemoteSessionClient.Interpret<SessionAnswer.Done>(Web1, lines[^1], new SilentProgress())!.Answer);
        Assert.False(Directory.Exists(upload));
    }
}
