using System.Diagnostics;
using Cutover.Locking;
using Cutover.Releases;
using Cutover.Tests.Support;

namespace Cutover.Tests.Locking;

public class DeployLockTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly RootLayout _layout;

    public DeployLockTests()
    {
        _layout = new RootLayout(_dir.Path);
        Directory.CreateDirectory(_layout.State);
    }

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_second_holder_fails_at_once_naming_the_first()
    {
        using var first = await DeployLock.AcquireAsync(_layout, TimeSpan.Zero, "cutover deploy ./dist", CancellationToken.None);
        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<LockHeldException>(() => DeployLock.AcquireAsync(_layout, TimeSpan.Zero, "cutover rollback", CancellationToken.None));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5));
        Assert.Equal(Environment.ProcessId, e.Holder!.Pid);
        Assert.Contains($"pid {Environment.ProcessId}", e.Message);
        Assert.Contains("cutover deploy ./dist", e.Message);
        Assert.Contains(Environment.UserName, e.Message);
        Assert.Contains("since", e.Message);
        Assert.Equal(Environment.ProcessId, DeployLock.CurrentHolder(_layout)!.Pid);
    }

    [Fact]
    public async Task A_waiter_gets_the_lock_when_the_holder_lets_go()
    {
        var first = await DeployLock.AcquireAsync(_layout, TimeSpan.Zero, "first", CancellationToken.None);
        var waiting = DeployLock.AcquireAsync(_layout, TimeSpan.FromSeconds(30), "second", CancellationToken.None);
        await Task.Delay(300); // the waiter's chance to take a lock it must not get: nothing to wait for
        Assert.False(waiting.IsCompleted);
        first.Dispose();
        using var second = await waiting;
        Assert.Equal("second", DeployLock.CurrentHolder(_layout)?.Command);
    }

    [Fact]
    public async Task The_lock_is_a_real_flock_that_dies_with_its_process()
    {
        // flock(1) from util-linux holds the same kind of lock from another process, then is killed.
        using var holder = Process.Start(new ProcessStartInfo("flock", [_layout.LockFile, "sleep", "60"]))!;
        LockHeldException? refused = null;
        await Wait.WithinAsync(async () =>
        {
            try
            {
                // flock(1) has not taken it yet when this succeeds
                using var l = await DeployLock.AcquireAsync(_layout, TimeSpan.Zero, "probe", CancellationToken.None);
                return false;
            }
            catch (LockHeldException e)
            {
                refused = e;
                return true;
            }
        }, TimeSpan.FromSeconds(10));
        Assert.NotNull(refused);
        holder.Kill(entireProcessTree: true);
        await holder.WaitForExitAsync();
        using var acquired = await DeployLock.AcquireAsync(_layout, TimeSpan.FromSeconds(5), "after", CancellationToken.None);
        Assert.Equal("after", DeployLock.CurrentHolder(_layout)?.Command);
    }
}
