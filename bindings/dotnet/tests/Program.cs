// The .NET binding's test suite: every test against a real `kepm-devagent serve` (TLS
// Mosquitto), children of this same program for what needs its own process (stderr, exit).
// Ends with "N passed, N failed" and exits 1 on any failure.
//
//   mono KepmlogTests.exe [NAME-SUBSTRING...]        (KEPM_DEVAGENT, KEPMLOG_REPO)
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading;

namespace Kepmlog.Tests
{
    internal sealed class AssertFailed : Exception
    {
        public AssertFailed(string m) : base(m) { }
    }

    internal static partial class Program
    {
        private const string JobId = "vector-dotnet";

        public static string Repo
        {
            get
            {
                string r = Environment.GetEnvironmentVariable("KEPMLOG_REPO");
                return string.IsNullOrEmpty(r) ? Directory.GetCurrentDirectory() : r;
            }
        }

        private static void Check(bool ok, string what)
        {
            if (!ok) throw new AssertFailed(what);
        }

        private static T Throws<T>(Action a, string what) where T : Exception
        {
            try
            {
                a();
            }
            catch (T e)
            {
                return e;
            }
            catch (Exception e)
            {
                throw new AssertFailed(what + ": threw " + e.GetType().Name + " (" + e.Message + "), want " + typeof(T).Name);
            }
            throw new AssertFailed(what + ": no exception, want " + typeof(T).Name);
        }

        private static Logger NewLogger(DevAgent d, LoggerOptions o, string token = "DotnetTest")
        {
            o.JobId = o.JobId ?? JobId;
            o.Token = token;
            o.ApiBase = d.ApiBase;
            o.CaBundle = d.Ca;
            return new Logger(o);
        }

        private static Dictionary<string, object> Envelope(Message m)
        {
            var p = m.Payload as Dictionary<string, object>;
            Check(p != null, "payload is not a JSON object: " + Json.Show(m.Payload));
            Check((double)p["Version"] == 1 && p["RespondToTopic"] == null && ((string)p["Id"]).Length == 36,
                "envelope " + Json.Show(p));
            return m.MetaData;
        }

        private static int Main(string[] args)
        {
            if (args.Length >= 2 && args[0] == "--child")
            {
                return Child(args[1]);
            }
            // The tests choose the job id themselves; an inherited one would change what the
            // no-job-id tests see.
            Environment.SetEnvironmentVariable("KEEPER_JOB_ID", null);
            Environment.SetEnvironmentVariable("KEPMLOG_FALLBACK", null);
            var tests = new List<KeyValuePair<string, Action>>
            {
                T("vectors", Vectors),
                T("level methods", LevelMethods),
                T("bad input", BadInput),
                T("events and a visible denial", EventsAndDenial),
                T("8 threads vs shutdown and dispose", ConcurrentShutdownAndDispose),
                T("two loggers share one connection", TwoLoggersShareOneConnection),
                T("a crashed user's logger is freed by its finalizer", FinalizerFreesAbandonedLogger),
                T("spool replay", SpoolReplay),
                T("spool directory others can write is refused", SpoolDirRefused),
                T("stderr fallback without a job id", StderrFallback),
                T("failed constructor leaves nothing behind", FailedConstructor),
                T("undelivered records at shutdown go to stderr", StderrUndelivered),
                T("nothing on stderr when delivered", StderrNothingWhenDelivered),
                T("exit without Dispose delivers (return from Main)", () => ExitWithoutDispose("exit-return", 0)),
                T("exit without Dispose delivers (Environment.Exit(3))", () => ExitWithoutDispose("exit-code", 3)),
                T("unhandled exception: records still delivered", () => ExitWithoutDispose("crash", -1)),
                T("missing native library names the platform", MissingNative),
            };
            int passed = 0, failed = 0;
            foreach (var t in tests)
            {
                if (args.Length > 0 && !args.Any(a => t.Key.Contains(a)))
                {
                    continue;
                }
                var sw = Stopwatch.StartNew();
                try
                {
                    t.Value();
                    passed++;
                    Console.WriteLine("PASS {0} ({1:0.0} s)", t.Key, sw.Elapsed.TotalSeconds);
                }
                catch (Exception e)
                {
                    failed++;
                    Console.WriteLine("FAIL {0}: {1}", t.Key, e is AssertFailed ? e.Message : e.ToString());
                }
            }
            Console.WriteLine("{0} passed, {1} failed", passed, failed);
            return failed == 0 && passed > 0 ? 0 : 1;
        }

        private static KeyValuePair<string, Action> T(string name, Action a)
        {
            return new KeyValuePair<string, Action>(name, a);
        }

        private static void Vectors()
        {
            var doc = (Dictionary<string, object>)Json.Parse(File.ReadAllText(Path.Combine(Repo, "tests", "vectors", "records.json")));
            var lg = (Dictionary<string, object>)doc["logger"];
            using (var d = new DevAgent(new[] { "KeeperLogger" }))
            using (var l = NewLogger(d, new LoggerOptions { Source = (string)lg["source"], DefaultCategory = (string)lg["default_category"] }))
            {
                var want = new List<object>();
                var names = new List<string>();
                int errors = 0;
                foreach (Dictionary<string, object> c in (List<object>)doc["cases"])
                {
                    var i = (Dictionary<string, object>)c["input"];
                    string name = (string)c["name"];
                    Action log = () => l.Log((Level)(int)(double)i["level"], (string)i["category"], (string)i["message"],
                        (string)i["correlation_id"], (string)i["context"]);
                    object kind;
                    if (c.TryGetValue("error", out kind) && kind != null)
                    {
                        var e = Throws<KepmlogException>(log, "case " + name);
                        Check(e.Kind == (string)kind, "case " + name + ": kind " + e.Kind + ", want " + kind);
                        errors++;
                        continue;
                    }
                    log();
                    want.Add(c["expect"]);
                    names.Add(name);
                }
                Check(errors > 0 && want.Count > 20, "the vectors file has " + want.Count + " records and " + errors + " errors");
                l.Flush(TimeSpan.FromSeconds(20));
                var got = d.Messages("KeeperLogger", want.Count);
                Check(got.Count == want.Count, "broker received " + got.Count + " records, want " + want.Count);
                for (int k = 0; k < want.Count; k++)
                {
                    var md = Envelope(got[k]);
                    Check(Json.Same(md, want[k]), "case " + names[k] + ":\n got " + Json.Show(md) + "\nwant " + Json.Show(want[k]));
                }
                var st = l.GetStats();
                Check(st.Delivered == (ulong)want.Count && st.Accepted == st.Delivered && st.Connected, "stats " + st);
                Check(l.ClientId.StartsWith(JobId + "_DotnetTest_", StringComparison.Ordinal), "client id " + l.ClientId);
            }
        }

        private static void LevelMethods()
        {
            using (var d = new DevAgent(new[] { "KeeperLogger" }))
            using (var l = NewLogger(d, new LoggerOptions { Source = "DotnetLevels", DefaultCategory = "Levels" }))
            {
                Check(l.Verbose("L", "verbose") && l.Debug("L", "debug") && l.Info("L", "info") && l.Warning("L", "warning")
                    && l.Error("L", "error") && l.Critical("L", "critical") && l.Log(Level.Warning, null, "by level", "run-1", "ctx"),
                    "a log call returned false (queue full)");
                l.Flush(TimeSpan.FromSeconds(20));
                var want = new[] { 5, 0, 1, 2, 3, 4, 2 };
                var got = d.Messages("KeeperLogger", want.Length);
                Check(got.Count == want.Length, "broker received " + got.Count);
                for (int k = 0; k < want.Length; k++)
                {
                    var md = Envelope(got[k]);
                    Check((double)md["LogLevel"] == want[k], "record " + k + ": " + Json.Show(md));
                }
                var last = got[want.Length - 1].MetaData;
                Check((string)last["Category"] == "Levels" && (string)last["CorrelationId"] == "run-1" && (string)last["Context"] == "ctx"
                    && (string)last["Source"] == "DotnetLevels", "Log(level, null, ...): " + Json.Show(last));
            }
        }

        private static void BadInput()
        {
            using (var d = new DevAgent(new[] { "KeeperLogger" }))
            {
                var l = NewLogger(d, new LoggerOptions { Source = "DotnetBad", Quiet = true });
                var empty = Throws<EmptyMessageException>(() => l.Info("C", ""), "empty");
                Check(empty.Message.Contains("non-empty") && empty.Kind == "empty_message", "error text does not name the fix: " + empty.Message);
                Throws<EmptyMessageException>(() => l.Info("C", " \r\n"), "blank");
                Throws<EmptyMessageException>(() => l.Info("C", null), "null message");
                Throws<InvalidLevelException>(() => l.Log((Level)6, "C", "m"), "level 6");
                Throws<InvalidLevelException>(() => l.Log((Level)(-1), "C", "m"), "level -1");
                var nul = Throws<InvalidArgumentException>(() => l.Info("C", "a\0b"), "NUL");
                Check(nul.Message.Contains("NUL"), nul.Message);
                var sur = Throws<InvalidArgumentException>(() => l.Info("C", "bad \ud800 surrogate"), "lone surrogate");
                Check(sur.Message.Contains("surrogate"), sur.Message);
                Throws<InvalidEventException>(() => l.Event("[1]"), "event array");
                Throws<InvalidEventException>(() => l.Event("nope"), "event text");
                Throws<InvalidEventException>(() => l.Event(null), "event null");
                Throws<InvalidJobIdException>(() => new Logger(new LoggerOptions { JobId = "bad_id", ApiBase = d.ApiBase }), "bad job id");
                var missing = Throws<MissingJobIdException>(() => new Logger(new LoggerOptions { ApiBase = d.ApiBase, Fallback = "error" }), "missing job id");
                Check(missing.Message.Contains("mqttTopics"), "missing job id: " + missing.Message);
                Throws<InvalidArgumentException>(() => new Logger(new LoggerOptions { JobId = JobId, QueueCapacity = -1 }), "negative capacity");
                Throws<InvalidArgumentException>(() => new Logger(new LoggerOptions { JobId = JobId, Fallback = "console" }), "fallback name");
                Throws<InvalidArgumentException>(() => l.Flush(TimeSpan.FromSeconds(-1)), "negative timeout");
                Check(l.Info("C", "one good record"), "queue full?");
                l.Shutdown(TimeSpan.FromSeconds(10));
                Throws<ShutDownException>(() => l.Info("C", "late"), "after shutdown");
                var st = l.GetStats();
                Check(st.Delivered == 1 && st.Accepted == 1, "stats after shutdown " + st);
                l.Dispose();
                l.Dispose();
                var closed = Throws<ShutDownException>(() => l.Info("C", "after dispose"), "after dispose");
                Check(closed.Kind == "shut_down", closed.Kind);
                Throws<ShutDownException>(() => l.Flush(TimeSpan.FromSeconds(1)), "flush after dispose");
                Throws<ShutDownException>(() => l.GetStats(), "stats after dispose");
            }
        }

        private static void EventsAndDenial()
        {
            using (var d = new DevAgent(new[] { "KeeperLogger", "Jobs/" + JobId + "/events" }, DevAgent.DenyVisibleFlags))
            {
                using (var l = NewLogger(d, new LoggerOptions { Source = "DotnetEvents" }))
                {
                    Check(l.Event("{\"phase\":\"scan\",\"files\":3,\"note\":\"caf\u00e9 \u2713\"}"), "event queue full");
                    l.Flush(TimeSpan.FromSeconds(20));
                }
                var got = d.Messages("Jobs/" + JobId + "/events", 1);
                Check(got.Count == 1, "events: " + got.Count);
                var p = (Dictionary<string, object>)got[0].Payload;
                Check((double)p["files"] == 3 && (string)p["note"] == "caf\u00e9 \u2713", "event payload " + Json.Show(p));
                using (var denied = NewLogger(d, new LoggerOptions { Source = "DotnetDenied", EventTopic = "Jobs/other/events", Quiet = true }))
                {
                    denied.Event("{\"x\":1}");
                    var e = Throws<DeniedException>(() => denied.Flush(TimeSpan.FromSeconds(20)), "denied flush");
                    Check(e.Message.Contains("allowedPublications") && e.Kind == "denied", "denied: " + e.Message);
                    Check(denied.GetStats().Denied == 1, "stats " + denied.GetStats());
                }
            }
        }

        private static Dictionary<string, int> Hammer(Logger l, int threads, int n)
        {
            var counts = new Dictionary<string, int> { { "ok", 0 }, { "full", 0 }, { "shut", 0 }, { "other", 0 } };
            var ts = new List<Thread>();
            for (int g = 0; g < threads; g++)
            {
                int gg = g;
                var t = new Thread(() =>
                {
                    int ok = 0, full = 0, shut = 0, other = 0;
                    for (int i = 0; i < n; i++)
                    {
                        try
                        {
                            if (l.Info("Threads", "thread " + gg + " record " + i)) ok++; else full++;
                        }
                        catch (ShutDownException)
                        {
                            shut++;
                        }
                        catch (Exception)
                        {
                            other++;
                        }
                    }
                    lock (counts)
                    {
                        counts["ok"] += ok;
                        counts["full"] += full;
                        counts["shut"] += shut;
                        counts["other"] += other;
                    }
                });
                t.Start();
                ts.Add(t);
            }
            foreach (var t in ts) t.Join();
            return counts;
        }

        private static string Show(Dictionary<string, int> c)
        {
            return string.Join(" ", c.Select(kv => kv.Key + "=" + kv.Value).ToArray());
        }

        private static void ConcurrentShutdownAndDispose()
        {
            using (var d = new DevAgent(new[] { "KeeperLogger" }))
            {
                var l = NewLogger(d, new LoggerOptions { Source = "DotnetThreads", QueueCapacity = 4096 });
                Exception shutErr = null;
                var shutter = new Thread(() =>
                {
                    Thread.Sleep(20);
                    try { l.Shutdown(TimeSpan.FromSeconds(5)); } catch (Exception e) { shutErr = e; }
                });
                shutter.Start();
                var counts = Hammer(l, 8, 10000);
                shutter.Join();
                Console.WriteLine("  calls: {0}; shutdown: {1}", Show(counts), shutErr == null ? "ok" : shutErr.GetType().Name);
                Check(counts["other"] == 0 && counts["ok"] + counts["full"] + counts["shut"] == 80000, "counts " + Show(counts));
                ulong undelivered = 0;
                if (shutErr is DeliveryTimeoutException) undelivered = ((DeliveryException)shutErr).Undelivered;
                else Check(shutErr == null, "Shutdown: " + shutErr);
                var st = l.GetStats();
                Check(st.Accepted == (ulong)counts["ok"] && st.Accepted == st.Delivered + st.Denied + st.Failed
                    && st.Failed == undelivered && st.Pending == 0,
                    "stats " + st + ", ok " + counts["ok"] + ", undelivered " + undelivered);
                // The library adds one Warning record about the drops: count this test's only.
                Func<ulong> threads = () => (ulong)d.Messages("KeeperLogger", 0).Count(m => (string)m.MetaData["Category"] == "Threads");
                DateTime deadline = DateTime.UtcNow.AddSeconds(20);
                while (threads() < st.Delivered && DateTime.UtcNow < deadline) Thread.Sleep(20);
                Check(threads() == st.Delivered, "broker received " + threads() + ", delivered " + st.Delivered);
                var closer = new Thread(l.Dispose);
                closer.Start();
                var after = Hammer(l, 8, 1000);
                closer.Join();
                Check(after["ok"] == 0 && after["shut"] == 8000, "logging during/after Dispose: " + Show(after));
            }
        }

        private static void TwoLoggersShareOneConnection()
        {
            const int each = 300;
            using (var d = new DevAgent(new[] { "KeeperLogger" }))
            using (var a = NewLogger(d, new LoggerOptions { Source = "Tool0" }))
            using (var b = NewLogger(d, new LoggerOptions { Source = "Tool1" }))
            {
                string id = a.ClientId;
                Check(id == JobId + "_DotnetTest_" + Process.GetCurrentProcess().Id, "client id " + id);
                Check(b.ClientId == id, "client ids " + id + " and " + b.ClientId);
                var ts = new[] { a, b }.Select((l, k) => new Thread(() =>
                {
                    for (int i = 0; i < each; i++) l.Info("Shared", k + "-" + i);
                })).ToList();
                ts.ForEach(t => t.Start());
                ts.ForEach(t => t.Join());
                foreach (var l in new[] { a, b })
                {
                    l.Flush(TimeSpan.FromSeconds(30));
                    var st = l.GetStats();
                    Check(st.Accepted == each && st.Delivered == each && st.Dropped == 0 && st.Reconnects == 0 && st.Connected, "stats " + st);
                }
                var got = d.Messages("KeeperLogger", 2 * each);
                Check(got.Count == 2 * each, "broker received " + got.Count);
                for (int k = 0; k < 2; k++)
                {
                    var mine = got.Where(m => (string)m.MetaData["Source"] == "Tool" + k).Select(m => (string)m.MetaData["Message"]).ToList();
                    Check(mine.SequenceEqual(Enumerable.Range(0, each).Select(i => k + "-" + i)), "logger " + k + ": " + mine.Count + " records, not its own in order");
                }
                int conns = d.Connections(id, 1);
                Check(conns == 1, "broker saw " + id + " connect " + conns + " times, want 1: " + d.ClientsSeen());
            }
        }

        private static void FinalizerFreesAbandonedLogger()
        {
            using (var d = new DevAgent(new[] { "KeeperLogger" }))
            {
                string id = null;
                // User code that crashes between creating a logger and disposing it, on a thread
                // of its own so that no stale stack slot keeps the logger reachable afterwards.
                var user = new Thread(() =>
                {
                    try
                    {
                        var l = NewLogger(d, new LoggerOptions { Source = "Abandoned" }, "DotnetFinal");
                        id = l.ClientId;
                        l.Info("Final", "abandoned");
                        l.Flush(TimeSpan.FromSeconds(20));
                        throw new InvalidOperationException("user code crashed");
                    }
                    catch (InvalidOperationException)
                    {
                    }
                });
                user.Start();
                user.Join();
                Check(d.Connections(id, 1) == 1, "first connection of " + id);
                for (int i = 0; i < 3; i++)
                {
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                }
                // Freed: its connection closed, so a new logger with the same client id opens a
                // new one. Not freed: the new logger would join the old connection.
                using (var next = NewLogger(d, new LoggerOptions { Source = "AfterAbandoned" }, "DotnetFinal"))
                {
                    Check(next.ClientId == id, "client id " + next.ClientId);
                    next.Info("Final", "next");
                    next.Flush(TimeSpan.FromSeconds(20));
                    int conns = d.Connections(id, 2);
                    Check(conns == 2, "broker saw " + id + " connect " + conns + " times, want 2 (the abandoned logger was not freed): " + d.ClientsSeen());
                }
            }
        }

        private static string TempDir()
        {
            string dir = Path.Combine(Path.GetTempPath(), "kepmlog-dotnet-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(dir);
            return dir;
        }

        private static void SpoolReplay()
        {
            string spool = Path.Combine(TempDir(), "spool");
            using (var d = new DevAgent(new[] { "KeeperLogger" }))
            {
                using (var first = new Logger(new LoggerOptions
                {
                    Source = "SpoolDotnet", JobId = "spool-dotnet", Token = "DotnetTest", SpoolDir = spool,
                    BrokerHost = "127.0.0.1", BrokerPort = 1, Quiet = true, UndeliveredToStderr = false,
                }))
                {
                    for (int i = 0; i < 20; i++) first.Info("Spool", "spooled");
                    var e = Throws<DeliveryTimeoutException>(() => first.Shutdown(TimeSpan.FromMilliseconds(300)), "shutdown without a broker");
                    Check(e.Undelivered == 20 && e.Kind == "timeout", "undelivered " + e.Undelivered);
                    Check(first.GetStats().Failed == 20, "stats " + first.GetStats());
                }
                using (var second = new Logger(new LoggerOptions
                {
                    Source = "SpoolDotnet", JobId = "spool-dotnet", Token = "DotnetTest", SpoolDir = spool,
                    ApiBase = d.ApiBase, CaBundle = d.Ca,
                }))
                {
                    var st = second.GetStats();
                    Check(st.Recovered == 20 && st.SpoolDropped == 0, "stats " + st + ", want 20 recovered");
                    second.Info("Spool", "second run");
                    second.Shutdown(LoggerOptions.DefaultCloseTimeout);
                }
                var got = d.Messages("KeeperLogger", 22).Select(m => m.MetaData).Where(md => (string)md["Category"] != "kepmlog")
                    .Select(md => (string)md["Message"]).ToList();
                Check(got.Count == 21 && got[0] == "spooled" && got[20] == "second run", "the broker received " + string.Join("|", got.ToArray()));
            }
        }

        private static void SpoolDirRefused()
        {
            string dir = TempDir();
            Check(Process.Start("chmod", "777 " + dir).WaitForExitAndCode() == 0, "chmod");
            var e = Throws<InvalidArgumentException>(() => new Logger(new LoggerOptions
            {
                JobId = "spool-dotnet", Token = "DotnetTest", SpoolDir = dir, BrokerHost = "127.0.0.1", BrokerPort = 1,
            }), "world-writable spool dir");
            Check(e.Message.Contains("chmod 700"), e.Message);
        }

        private static int WaitForExitAndCode(this Process p)
        {
            p.WaitForExit();
            return p.ExitCode;
        }
    }
}
