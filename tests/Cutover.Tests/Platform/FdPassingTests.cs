using System.Diagnostics;
using System.IO.Pipes;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Cutover.Platform;
using Cutover.Tests.Support;

namespace Cutover.Tests.Platform;

public class FdPassingTests
{
    // The new side, in another language on purpose: Python's socket.recv_fds is an independent reading of the wire
    // format (4-byte big-endian length with SCM_RIGHTS attached, then the payload).
    private const string NewSide = """
        import socket, struct, sys
        channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        channel.connect(sys.argv[2])
        header, fds, _, _ = socket.recv_fds(channel, 4, 16)
        length = struct.unpack('>i', header)[0]
        payload = b''
        while len(payload) < length:
            payload += channel.recv(length - len(payload))
        if sys.argv[1] == 'listener':
            listener = socket.socket(fileno=fds[0])
            listener.settimeout(20)
            channel.sendall(b'accepting ' + payload + b'\n')
            while True:
                connection, _ = listener.accept()
                connection.sendall(b'new\n')
                connection.close()
        else:
            with open(fds[0], 'rb', buffering=0) as pipe:
                for line in iter(pipe.readline, b''):
                    sys.stdout.write('got ' + line.decode())
                    sys.stdout.flush()
        """;

    [Fact]
    public async Task A_listening_socket_handed_to_another_process_accepts_there_and_no_connection_is_refused_meanwhile()
    {
        using var dir = new TempDir();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(512);
        var address = (IPEndPoint)listener.LocalEndPoint!;

        // The old side serves until told to stop accepting; it polls rather than cancelling an accept, so a
        // connection the kernel hands it is always answered.
        var stopAccepting = new ManualResetEventSlim();
        var oldSide = Task.Factory.StartNew(() =>
        {
            while (!stopAccepting.IsSet)
            {
                if (!listener.Poll(TimeSpan.FromMilliseconds(20), SelectMode.SelectRead)) continue;
                using var connection = listener.Accept();
                connection.Send("old\n"u8);
            }
        }, TaskCreationOptions.LongRunning);

        var answers = new Answers();
        using var stopClients = new CancellationTokenSource();
        var clients = Enumerable.Range(0, 4).Select(_ => Task.Run(() => ConnectLoopAsync(address, answers, stopClients.Token))).ToArray();
        await Wait.UntilAsync(() => answers.Old > 20, TimeSpan.FromSeconds(20), "the old side to serve");

        var channelPath = dir.Combine("handover.sock");
        using var channelListener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        channelListener.Bind(new UnixDomainSocketEndPoint(channelPath));
        channelListener.Listen(1);
        using var newSide = StartPython(dir, "listener", channelPath);
        try
        {
            using var channel = await channelListener.AcceptAsync(timeout.Token);
            await FdPassing.SendAsync(channel, "hello"u8.ToArray(), [(int)listener.SafeHandle.DangerousGetHandle()], timeout.Token);
            var reply = new byte[64];
            var n = await channel.ReceiveAsync(reply, SocketFlags.None, timeout.Token);
            Assert.Equal("accepting hello\n", Encoding.ASCII.GetString(reply, 0, n));

            // Only now does the old side stop accepting and close its copy: the accept queue is the socket's,
            // shared by both descriptors, so what is queued waits for the new side instead of being reset.
            stopAccepting.Set();
            await oldSide.WaitAsync(timeout.Token);
            listener.Dispose();
            var newBefore = answers.New;
            await Wait.UntilAsync(() => answers.New > newBefore + 50, TimeSpan.FromSeconds(20), "the new side to serve");
        }
        finally
        {
            await stopClients.CancelAsync();
            await Task.WhenAll(clients).WaitAsync(TimeSpan.FromSeconds(30));
            newSide.Kill();
            await newSide.WaitForExitAsync();
        }
        Assert.Equal(0, answers.Refused);
        Assert.Empty(answers.Failures);
        Assert.True(answers.Old > 0 && answers.New > 0);
    }

    [Fact]
    public async Task A_pipe_handed_to_another_process_keeps_delivering_the_writers_output_after_the_sender_closes_its_end()
    {
        using var dir = new TempDir();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var writer = Process.Start(new ProcessStartInfo("/bin/sh")
        {
            ArgumentList = { "-c", "i=0; while [ $i -lt 40 ]; do echo line $i; i=$((i+1)); sleep 0.02; done" },
            RedirectStandardOutput = true,
        })!;
        var channelPath = dir.Combine("handover.sock");
        using var channelListener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        channelListener.Bind(new UnixDomainSocketEndPoint(channelPath));
        channelListener.Listen(1);
        using var reader = StartPython(dir, "pipe", channelPath);
        try
        {
            using var channel = await channelListener.AcceptAsync(timeout.Token);
            var pipe = (PipeStream)writer.StandardOutput.BaseStream;
            await FdPassing.SendAsync(channel, ReadOnlyMemory<byte>.Empty, [(int)pipe.SafePipeHandle.DangerousGetHandle()], timeout.Token);
            writer.StandardOutput.Dispose(); // our end closed: the writer must still have a reader, the other process

            await writer.WaitForExitAsync(timeout.Token);
            Assert.Equal(0, writer.ExitCode); // no SIGPIPE
            var received = new List<string>();
            while (await reader.StandardOutput.ReadLineAsync(timeout.Token) is { } line) received.Add(line);
            Assert.Equal(Enumerable.Range(0, 40).Select(i => $"got line {i}"), received);
        }
        finally
        {
            if (!reader.HasExited) reader.Kill();
            await reader.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task Received_descriptors_are_close_on_exec_and_a_second_copy_of_the_same_open_file()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var (ours, theirs) = SocketPair();
        using (ours)
        using (theirs)
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(8);
            var receiving = FdPassing.ReceiveAsync(theirs, timeout.Token);
            await Task.Delay(100, timeout.Token); // the receiver waits for data, it does not spin or fail on an empty socket
            Assert.False(receiving.IsCompleted);
            await FdPassing.SendAsync(ours, "payload"u8.ToArray(), [(int)listener.SafeHandle.DangerousGetHandle()], timeout.Token);
            var message = await receiving;

            Assert.Equal("payload", Encoding.UTF8.GetString(message.Payload));
            var fd = Assert.Single(message.Descriptors);
            Assert.NotEqual((int)listener.SafeHandle.DangerousGetHandle(), fd);
            var fdFlags = File.ReadAllLines($"/proc/self/fdinfo/{fd}").Single(l => l.StartsWith("flags:", StringComparison.Ordinal));
            var openFlags = Convert.ToInt32(fdFlags["flags:".Length..].Trim(), 8);
            Assert.NotEqual(0, openFlags & 0x80000); // O_CLOEXEC
            using var received = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
            Assert.Equal(listener.LocalEndPoint, received.LocalEndPoint);
        }
    }

    [Fact]
    public async Task A_channel_closed_before_a_message_is_an_end_of_stream_not_an_empty_message()
    {
        var (ours, theirs) = SocketPair();
        ours.Dispose();
        using (theirs)
            await Assert.ThrowsAsync<EndOfStreamException>(() => FdPassing.ReceiveAsync(theirs, CancellationToken.None));
    }

    [Fact]
    public async Task Only_a_unix_socket_carries_descriptors()
    {
        using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var e = await Assert.ThrowsAsync<ArgumentException>(() => FdPassing.SendAsync(tcp, ReadOnlyMemory<byte>.Empty, [0], CancellationToken.None));
        Assert.Contains("Unix domain socket", e.Message);
    }

    internal static (Socket Ours, Socket Theirs) SocketPair()
    {
        var (a, b) = LibC.InheritableSocketPair();
        return (new Socket(new SafeSocketHandle(a, ownsHandle: true)), new Socket(new SafeSocketHandle(b, ownsHandle: true)));
    }

    private static Process StartPython(TempDir dir, string mode, string channelPath)
    {
        var script = dir.Combine("new_side.py");
        File.WriteAllText(script, NewSide);
        return Process.Start(new ProcessStartInfo("python3")
        {
            ArgumentList = { script, mode, channelPath },
            RedirectStandardOutput = true,
        })!;
    }

    private static async Task ConnectLoopAsync(IPEndPoint address, Answers answers, CancellationToken stop)
    {
        for (var i = 0; i < 100_000 && !stop.IsCancellationRequested; i++)
        {
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                using var attempt = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await client.ConnectAsync(address, attempt.Token);
                var buffer = new byte[16];
                var read = 0;
                while (read < 4)
                {
                    var n = await client.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, attempt.Token);
                    if (n == 0) break;
                    read += n;
                }
                answers.Record(Encoding.ASCII.GetString(buffer, 0, read));
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
                Interlocked.Increment(ref answers.Refused);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                answers.Record($"error: {e.Message}");
            }
        }
    }

    private sealed class Answers
    {
        private int _old, _new;
        public int Refused;
        public System.Collections.Concurrent.ConcurrentQueue<string> Failures { get; } = new();
        public int Old => Volatile.Read(ref _old);
        public int New => Volatile.Read(ref _new);

        public void Record(string answer)
        {
            if (answer == "old\n") Interlocked.Increment(ref _old);
            else if (answer == "new\n") Interlocked.Increment(ref _new);
            else Failures.Enqueue(answer);
        }
    }
}
