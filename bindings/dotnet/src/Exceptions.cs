// One exception type per error kind of libkepmlog (kepmlog_status), with the library's own
// text, which names the fix: the same kinds and messages as the Go and Python bindings.
using System;

namespace Kepmlog
{
    /// <summary>Base of every error kepmlog raises. <see cref="Kind"/> is the core's stable short
    /// name (<c>"empty_message"</c>, <c>"denied"</c>, ...); <see cref="StatusName"/> the C ABI's
    /// (<c>"KEPMLOG_ERR_DENIED"</c>).</summary>
    public class KepmlogException : Exception
    {
        internal KepmlogException(string kind, string statusName, string message) : base("kepmlog: " + message)
        {
            Kind = kind;
            StatusName = statusName;
        }

        /// <summary>The core's short name of the error kind.</summary>
        public string Kind { get; private set; }

        /// <summary>The C ABI's name of the status, e.g. <c>KEPMLOG_ERR_TIMEOUT</c>.</summary>
        public string StatusName { get; private set; }

        internal static KepmlogException FromStatus(Status status, string text, ulong undelivered)
        {
            string name = Native.FromUtf8(Native.kepmlog_status_name((int)status));
            if (string.IsNullOrEmpty(text))
            {
                text = name;
            }
            switch (status)
            {
                case Status.NullArgument:
                case Status.InvalidUtf8:
                case Status.InvalidArgument: return new InvalidArgumentException(text, name);
                case Status.MissingJobId: return new MissingJobIdException(text);
                case Status.InvalidJobId: return new InvalidJobIdException(text);
                case Status.EmptyMessage: return new EmptyMessageException(text);
                case Status.InvalidLevel: return new InvalidLevelException(text);
                case Status.InvalidEvent: return new InvalidEventException(text);
                case Status.ShutDown: return new ShutDownException(text);
                case Status.Forked: return new ForkedException(text);
                case Status.Timeout: return new DeliveryTimeoutException(text, undelivered);
                case Status.Denied: return new DeniedException(text, undelivered);
                case Status.Undeliverable: return new UndeliverableException(text, undelivered);
                default: return new InternalException(text, name);
            }
        }
    }

    /// <summary>Bad input to the constructor or a log call.</summary>
    public abstract class InvalidInputException : KepmlogException
    {
        internal InvalidInputException(string kind, string statusName, string message) : base(kind, statusName, message) { }
    }

    /// <summary>An option or argument kepmlog cannot use (a NUL in a string, queue capacity
    /// out of range, an unreadable CA bundle, a spool directory others can write, ...).</summary>
    public sealed class InvalidArgumentException : InvalidInputException
    {
        internal InvalidArgumentException(string message) : base("invalid_option", "KEPMLOG_ERR_INVALID_ARGUMENT", message) { }
        internal InvalidArgumentException(string message, string statusName) : base("invalid_option", statusName, message) { }
    }

    /// <summary><c>KEEPER_JOB_ID</c> is not set and no job id was given: declare
    /// <c>mqttTopics</c> in the job JSON (or set <see cref="LoggerOptions.JobId"/>).</summary>
    public sealed class MissingJobIdException : InvalidInputException
    {
        internal MissingJobIdException(string message) : base("missing_job_id", "KEPMLOG_ERR_MISSING_JOB_ID", message) { }
    }

    /// <summary>The job id cannot be used in an MQTT client id (job ids use hyphens).</summary>
    public sealed class InvalidJobIdException : InvalidInputException
    {
        internal InvalidJobIdException(string message) : base("invalid_job_id", "KEPMLOG_ERR_INVALID_JOB_ID", message) { }
    }

    /// <summary>The message is empty or only white space: KeeperLogger rejects those.</summary>
    public sealed class EmptyMessageException : InvalidInputException
    {
        internal EmptyMessageException(string message) : base("empty_message", "KEPMLOG_ERR_EMPTY_MESSAGE", message) { }
    }

    /// <summary>Not one of the six <see cref="Level"/> values (0..5).</summary>
    public sealed class InvalidLevelException : InvalidInputException
    {
        internal InvalidLevelException(string message) : base("invalid_level", "KEPMLOG_ERR_INVALID_LEVEL", message) { }
    }

    /// <summary>An event must be one JSON object (and not too large).</summary>
    public sealed class InvalidEventException : InvalidInputException
    {
        internal InvalidEventException(string message) : base("invalid_event", "KEPMLOG_ERR_INVALID_EVENT", message) { }
    }

    /// <summary>The logger was shut down or disposed: create a new one to log again.</summary>
    public sealed class ShutDownException : KepmlogException
    {
        internal ShutDownException(string message) : base("shut_down", "KEPMLOG_ERR_SHUT_DOWN", message) { }
    }

    /// <summary>The logger was created by the parent of this forked process.</summary>
    public sealed class ForkedException : KepmlogException
    {
        internal ForkedException(string message) : base("forked", "KEPMLOG_ERR_FORKED", message) { }
    }

    /// <summary>The library failed inside (a panic or the OS refusing a thread): a bug or a
    /// resource limit; the text says which.</summary>
    public sealed class InternalException : KepmlogException
    {
        internal InternalException(string message, string statusName) : base("internal", statusName, message) { }
    }

    /// <summary>What <see cref="Logger.Flush"/> and <see cref="Logger.Shutdown"/> could not
    /// deliver. <see cref="Undelivered"/> is the number of records not acknowledged at the
    /// deadline (flush: still queued; shutdown: given up and counted as failed).</summary>
    public abstract class DeliveryException : KepmlogException
    {
        internal DeliveryException(string kind, string statusName, string message, ulong undelivered)
            : base(kind, statusName, message)
        {
            Undelivered = undelivered;
        }

        /// <summary>Records not acknowledged when the call returned.</summary>
        public ulong Undelivered { get; private set; }
    }

    /// <summary>The deadline passed with records still unacknowledged.</summary>
    public sealed class DeliveryTimeoutException : DeliveryException
    {
        internal DeliveryTimeoutException(string message, ulong undelivered)
            : base("timeout", "KEPMLOG_ERR_TIMEOUT", message, undelivered) { }
    }

    /// <summary>The broker refused publishes since the last flush: add the topic to
    /// <c>mqttTopics.allowedPublications</c> in the job JSON.</summary>
    public sealed class DeniedException : DeliveryException
    {
        internal DeniedException(string message, ulong undelivered)
            : base("denied", "KEPMLOG_ERR_DENIED", message, undelivered) { }
    }

    /// <summary>Records were given up for another reason than the deadline (larger than the
    /// broker's Maximum Packet Size): log shorter messages and contexts.</summary>
    public sealed class UndeliverableException : DeliveryException
    {
        internal UndeliverableException(string message, ulong undelivered)
            : base("undeliverable", "KEPMLOG_ERR_UNDELIVERABLE", message, undelivered) { }
    }
}
