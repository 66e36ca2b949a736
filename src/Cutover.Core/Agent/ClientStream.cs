namespace Cutover.Agent;

/// <summary>
/// The response body of a command whose CLI may go away mid-way (SIGKILL, a dropped SSH session). Writes after the
/// client has gone are dropped instead of thrown: the work they report (an undo) must finish all the same.
/// </summary>
internal sealed class ClientStream(Stream inner) : Stream
{
    private volatile bool _gone;

    public override void Write(byte[] buffer, int offset, int count)
    {
        if (_gone) return;
        try
        {
            inner.Write(buffer, offset, count);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            _gone = true;
        }
    }

    public override void Flush()
    {
        if (_gone) return;
        try
        {
            inner.Flush();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            _gone = true;
        }
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
