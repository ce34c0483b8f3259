namespace Kepmlog
{
    /// <summary>The six KeeperLogger levels; the value is the wire value
    /// (<c>MetaData.LogLevel</c>). <see cref="Verbose"/> is the least severe level although its
    /// number is the highest.</summary>
    public enum Level
    {
        /// <summary>Debug (0).</summary>
        Debug = 0,
        /// <summary>Info (1).</summary>
        Info = 1,
        /// <summary>Warning (2).</summary>
        Warning = 2,
        /// <summary>Error (3).</summary>
        Error = 3,
        /// <summary>Critical (4).</summary>
        Critical = 4,
        /// <summary>Verbose (5): the least severe.</summary>
        Verbose = 5,
    }

    /// <summary>A logger's counters (<c>kepmlog_stats</c> and friends):
    /// <c>Accepted = Delivered + Denied + Failed + Pending</c>; <see cref="Dropped"/> records were
    /// never accepted.</summary>
    public sealed class Stats
    {
        internal Stats(NativeStats s, ulong printed, ulong recovered, ulong spoolDropped)
        {
            Accepted = s.Accepted;
            Delivered = s.Delivered;
            Dropped = s.Dropped;
            Denied = s.Denied;
            Failed = s.Failed;
            Pending = s.Pending;
            Reconnects = s.Reconnects;
            Connected = s.Connected != 0;
            Printed = printed;
            Recovered = recovered;
            SpoolDropped = spoolDropped;
        }

        /// <summary>Records and events taken into the queue.</summary>
        public ulong Accepted { get; private set; }
        /// <summary>Acknowledged by the broker.</summary>
        public ulong Delivered { get; private set; }
        /// <summary>Not taken: the queue was full. Not part of <see cref="Accepted"/>.</summary>
        public ulong Dropped { get; private set; }
        /// <summary>Refused by the broker (topic not in <c>allowedPublications</c>).</summary>
        public ulong Denied { get; private set; }
        /// <summary>Given up: still undelivered when the logger shut down, or undeliverable.</summary>
        public ulong Failed { get; private set; }
        /// <summary>Accepted and not settled yet (queued or in flight).</summary>
        public ulong Pending { get; private set; }
        /// <summary>Successful connections after the first one.</summary>
        public ulong Reconnects { get; private set; }
        /// <summary>Connected to the broker right now.</summary>
        public bool Connected { get; private set; }
        /// <summary>Records written to stderr as text lines: with the stderr fallback every one
        /// (none is then accepted); otherwise the undelivered ones written at shutdown.</summary>
        public ulong Printed { get; private set; }
        /// <summary>Records an earlier run of the job left in the spool, sent first by this
        /// logger (part of <see cref="Accepted"/>).</summary>
        public ulong Recovered { get; private set; }
        /// <summary>Records the spool's cap removed from disk before delivery.</summary>
        public ulong SpoolDropped { get; private set; }

        /// <inheritdoc/>
        public override string ToString()
        {
            return string.Format(
                "Stats {{ Accepted = {0}, Delivered = {1}, Dropped = {2}, Denied = {3}, Failed = {4}, " +
                "Pending = {5}, Reconnects = {6}, Connected = {7}, Printed = {8}, Recovered = {9}, SpoolDropped = {10} }}",
                Accepted, Delivered, Dropped, Denied, Failed, Pending, Reconnects, Connected, Printed,
                Recovered, SpoolDropped);
        }
    }
}
