namespace Cutover.Tests.Support;

/// <summary>
/// A Node worker for the process-type tests (worker.js beside the Node example app), driven by a WORKER file in its
/// release: "job" runs 5-second jobs back to back and, on SIGTERM, finishes the job in hand before it exits; "fail"
/// exits 1 at start; "leak" holds 200 MiB once (the first worker of the journal only); anything else idles. Every worker appends to the journal named by $JOB_LOG (lines
/// "&lt;ms&gt; &lt;version&gt;:&lt;pid&gt; &lt;what&gt;", written by the worker itself: start, alive every 20 ms, job-start, job-done,
/// sigterm, exit), and crashes (exit 3) when the file $JOB_LOG.crash appears.
/// </summary>
public static class JobWorker
{
    public const string Script = """
        const fs = require('fs');
        const read = f => { try { return fs.readFileSync(f, 'utf8').trim(); } catch { return ''; } };
        const mode = read('WORKER');
        const journal = process.env.JOB_LOG;
        const me = `${read('VERSION')}:${process.pid}`;
        const write = what => fs.appendFileSync(journal, `${Date.now()} ${me} ${what}\n`);
        if (mode === 'fail') { console.error('worker: refusing to start (WORKER=fail)'); process.exit(1); }
        write(`start port=${process.env.PORT ?? 'none'} process=${process.env.CUTOVER_PROCESS}`);
        if (process.send) process.send('ready'); // for ready: message; without an IPC channel there is no process.send
        let stopping = false, busy = false;
        const stop = signal => { write(signal.toLowerCase()); stopping = true; if (!busy) { write('exit'); process.exit(0); } };
        process.on('SIGTERM', () => stop('SIGTERM'));
        process.on('SIGINT', () => stop('SIGINT'));
        if (mode === 'leak' && !fs.existsSync(journal + '.leaked')) {
          fs.writeFileSync(journal + '.leaked', '');
          global.hog = Buffer.alloc(200 << 20, 1); // touched, so resident: well above a max_memory of 120M
          write('leaked');
        }
        if (mode === 'job') {
          const job = () => {
            if (stopping) { write('exit'); process.exit(0); }
            busy = true; write('job-start');
            setTimeout(() => { write('job-done'); busy = false; job(); }, 5000);
          };
          job();
        }
        setInterval(() => {
          write('alive');
          if (fs.existsSync(journal + '.crash')) { fs.unlinkSync(journal + '.crash'); write('crash'); process.exit(3); }
        }, 20);
        """;

    /// <summary>Writes worker.js and its WORKER mode into a release (or source) directory.</summary>
    public static void WriteInto(string dir, string mode)
    {
        File.WriteAllText(Path.Combine(dir, "worker.js"), Script);
        File.WriteAllText(Path.Combine(dir, "WORKER"), mode);
    }

    public sealed record Entry(int Line, long Ms, string Version, int Pid, string What);

    public static IReadOnlyList<Entry> Read(string journal) =>
        !File.Exists(journal) ? [] : File.ReadAllLines(journal).Select((line, i) =>
        {
            var parts = line.Split(' ', 3);
            var who = parts[1].Split(':');
            return new Entry(i, long.Parse(parts[0]), who[0], int.Parse(who[1]), parts[2]);
        }).ToList();

    /// <summary>
    /// Pairs of workers whose lives overlap in the journal: a line of one between the first and the last line of another.
    /// The journal is appended by the workers themselves, so its order is the order things happened.
    /// </summary>
    public static IReadOnlyList<string> Overlaps(IReadOnlyList<Entry> entries)
    {
        var lives = entries.GroupBy(e => e.Pid).Select(g => (Pid: g.Key, First: g.Min(e => e.Line), Last: g.Max(e => e.Line))).OrderBy(l => l.First).ToList();
        var overlaps = new List<string>();
        for (var i = 0; i < lives.Count; i++)
            for (var j = i + 1; j < lives.Count; j++)
                if (lives[j].First < lives[i].Last)
                    overlaps.Add($"pid {lives[j].Pid} (from line {lives[j].First}) started before pid {lives[i].Pid} ended (line {lives[i].Last})");
        return overlaps;
    }
}
