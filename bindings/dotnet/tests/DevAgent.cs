// `kepm-devagent serve` (HTTPS Plugin Settings + TLS Mosquitto) for one test, driven like
// bindings/go/harness_test.go: JSON lines on its stdout, "quit" on its stdin.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Threading;

namespace Kepmlog.Tests
{
    internal sealed class Message
    {
        public string Topic;
        public object Payload;
        public Dictionary<string, object> MetaData
        {
            get
            {
                var p = Payload as Dictionary<string, object>;
                object md;
                return p != null && p.TryGetValue("MetaData", out md) ? md as Dictionary<string, object> : null;
            }
        }
    }

    internal sealed class DevAgent : IDisposable
    {
        private readonly Process proc;
        private readonly object gate = new object();
        private readonly List<Message> messages = new List<Message>();
        private readonly List<string> clients = new List<string>();
        private Dictionary<string, object> ready;
        private bool done;

        public static string Path
        {
            get
            {
                string p = Environment.GetEnvironmentVariable("KEPM_DEVAGENT");
                return string.IsNullOrEmpty(p) ? System.IO.Path.Combine(Program.Repo, "target", "debug", "kepm-devagent") : p;
            }
        }

        /// <summary>The serve flags of a test that expects a visible denial (PUBACK 0x87, so
        /// DeniedException): the devagent drops publishes to undeclared topics silently by
        /// default, like the real agent.</summary>
        public static readonly string[] DenyVisibleFlags = { "--deny-visible" };

        /// <param name="allow">Topics of the broker's ACL (--allow).</param>
        /// <param name="serveFlags">Further `serve` flags, e.g. <see cref="DenyVisibleFlags"/>.</param>
        public DevAgent(string[] allow, params string[] serveFlags)
        {
            var args = new List<string> { "serve" };
            foreach (string a in allow)
            {
                args.Add("--allow");
                args.Add(a);
            }
            args.AddRange(serveFlags);
            var psi = new ProcessStartInfo(Path, string.Join(" ", args.ToArray()))
            {
                UseShellExecute = false,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
            };
            psi.EnvironmentVariables["TMPDIR"] = "/tmp";
            try
            {
                proc = Process.Start(psi);
            }
            catch (Exception e)
            {
                throw new Exception("cannot start " + Path + " (set KEPM_DEVAGENT): " + e.Message);
            }
            var reader = new Thread(Read) { IsBackground = true };
            reader.Start();
            DateTime deadline = DateTime.UtcNow.AddSeconds(30);
            lock (gate)
            {
                while (ready == null && !done && Wait(deadline)) { }
                if (ready == null)
                {
                    throw new Exception("the devagent did not get ready");
                }
            }
        }

        // Monitor.Wait until the deadline; false once it has passed.
        private bool Wait(DateTime deadline)
        {
            TimeSpan left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                return false;
            }
            Monitor.Wait(gate, left);
            return true;
        }

        private void Read()
        {
            string line;
            while ((line = proc.StandardOutput.ReadLine()) != null)
            {
                Dictionary<string, object> o;
                try
                {
                    o = Json.Parse(line) as Dictionary<string, object>;
                }
                catch (FormatException)
                {
                    continue;
                }
                if (o == null)
                {
                    continue;
                }
                object ev;
                o.TryGetValue("event", out ev);
                lock (gate)
                {
                    switch (ev as string)
                    {
                        case "ready":
                            ready = o;
                            break;
                        case "message":
                            object payload;
                            if (!o.TryGetValue("payload", out payload))
                            {
                                o.TryGetValue("payload_text", out payload);
                            }
                            messages.Add(new Message { Topic = (string)o["topic"], Payload = payload });
                            break;
                        case "client":
                            clients.Add((string)o["client_id"]);
                            break;
                    }
                    Monitor.PulseAll(gate);
                }
            }
            lock (gate)
            {
                done = true;
                Monitor.PulseAll(gate);
            }
        }

        public string ApiBase { get { return (string)ready["api_base"]; } }
        public string Ca { get { return (string)ready["ca"]; } }
        public int BrokerPort { get { return (int)(double)ready["broker_port"]; } }

        /// <summary>The messages on <paramref name="topic"/>, once there are at least
        /// <paramref name="n"/> (or after 20 s).</summary>
        public List<Message> Messages(string topic, int n)
        {
            DateTime deadline = DateTime.UtcNow.AddSeconds(20);
            lock (gate)
            {
                while (true)
                {
                    var got = messages.FindAll(m => m.Topic == topic);
                    if (got.Count >= n || done || !Wait(deadline))
                    {
                        return got;
                    }
                }
            }
        }

        /// <summary>How often the broker saw <paramref name="clientId"/> connect, after it saw
        /// it at least <paramref name="atLeast"/> times (or 20 s) and a moment more: connection
        /// lines come from the broker's log and may trail the messages.</summary>
        public int Connections(string clientId, int atLeast)
        {
            DateTime deadline = DateTime.UtcNow.AddSeconds(20);
            lock (gate)
            {
                while (clients.FindAll(c => c == clientId).Count < atLeast && !done && Wait(deadline)) { }
            }
            Thread.Sleep(500);
            lock (gate)
            {
                return clients.FindAll(c => c == clientId).Count;
            }
        }

        public string ClientsSeen()
        {
            lock (gate)
            {
                return string.Join(", ", clients.ToArray());
            }
        }

        public void Dispose()
        {
            try
            {
                proc.StandardInput.WriteLine("quit");
                proc.StandardInput.Close();
            }
            catch (IOException)
            {
                // Already gone: nothing to stop.
            }
            if (!proc.WaitForExit(30000))
            {
                proc.Kill();
            }
            proc.Dispose();
        }
    }
}
