namespace Cutover.Platform.Epoll;

/// <summary>What an <see cref="EpollLoop"/> watches (a connection's <see cref="EpollSocket"/>, a listener's <see cref="EpollAcceptor"/>): its table slot and what it does on an event.</summary>
internal abstract class EpollWatched
{
    /// <summary>The loop's table slot (-1 once forgotten) and its generation: set by <see cref="EpollLoop"/>.</summary>
    internal int Slot { get; set; } = -1;
    internal uint Generation { get; set; }

    /// <summary>On the loop's thread: the events epoll reported.</summary>
    internal abstract void OnEvents(uint events);
}
