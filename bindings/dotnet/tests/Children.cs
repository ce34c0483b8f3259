// Tests that need a process of their own (what the library writes on stderr, how the process
// ends): this program run again as `--child MODE`, as bindings/go/stderr_test.go does.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Kepmlog.Tests
{
    internal static partial class Program
    {
        private sealed class ChildRun
        {
            public Dictionary<string, string> Result = new Dictionary<string, string>();
            public string Stdout;
            public string Stderr;
            public int Code;
        }

        private static string Env(string name)
        {
            return Environment.GetEnvironmentVariable(name) ?? string.Empty;
        }

        private static void Result(params object[] kv)
        {
            var parts = new List<string>();
            for (int i = 0; i < kv.Length; i += 2) parts.Add(kv[i] + "=" + kv[i + 1]);
            Console.WriteLine("RESULT " + string.Join(" ", parts.ToArray()));
        }

        private static int Child(string mode)
        {
            switch (mode)
            {
                case "fallback":
                {
                    Logger l;
                    try
                    {
                        l = new Logger(new LoggerOptions { Source = "DotnetTool", Args = new[] { "dotnettool" } });
                    }
                    catch (KepmlogException e)
                    {
                        Console.WriteLine("ERROR " + e.Message);
                        return 1;
                    }
                    for (int i = 0; i < 10; i++) l.Warning("Finding", "record " + i);
                    l.Event("{\"phase\":\"done\"}");
                    var st = l.GetStats();
                    Result("printed", st.Printed, "accepted", st.Accepted, "toStderr", l.WritesToStderr);
                    l.Dispose();
                    return 0;
                }
                case "fail":
                    try
                    {
                        new Logger(new LoggerOptions { Source = "DotnetTool", Args = new[] { "dotnettool" } });
                        return 3;
                    }
                    catch (MissingJobIdException e)
                    {
                        Console.Error.WriteLine(e.Message);
                    }
                    // A finalizer of a half-built logger would run here; it must not fail or print.
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                    return 0;
                case "down":
                case "off":
                case "up":
                {
                    var l = new Logger(new LoggerOptions
                    {
                        Source = "DownTool", JobId = "dotnet-stderr-job", Token = "dotnettest", Args = new[] { "dotnettool" },
                        BrokerHost = "127.0.0.1", BrokerPort = ushort.Parse(Env("BROKER_PORT")),
                        CaBundle = Env("BROKER_CA") == "" ? null : Env("BROKER_CA"),
                        Quiet = true, UndeliveredToStderr = mode != "off",
                    });
                    for (int i = 0; i < 20; i++) l.Info("Undelivered", "u " + i);
                    ulong left = 0;
                    try
                    {
                        l.Shutdown(TimeSpan.FromMilliseconds(int.Parse(Env("TIMEOUT_MS"))));
                    }
                    catch (DeliveryException e)
                    {
                        left = e.Undelivered;
                    }
                    Result("left", left, "printed", l.GetStats().Printed);
                    l.Dispose();
                    return 0;
                }
                case "exit-return":
                case "exit-code":
                case "crash":
                {
                    // What a job tool started by the agent does: KEEPER_JOB_ID and
                    // --keeper-api-base come from the agent; no Dispose.
                    var l = new Logger(new LoggerOptions { Source = "ExitTool", Token = "DotnetExit", CaBundle = Env("BROKER_CA"), Quiet = true });
                    int n = int.Parse(Env("RECORDS"));
                    for (int i = 0; i < n; i++) l.Info("Exit", "record " + i);
                    Result("delivered_before_exit", l.GetStats().Delivered);
                    Console.Out.Flush();
                    if (mode == "exit-code") Environment.Exit(3);
                    if (mode == "crash") throw new InvalidOperationException("the tool crashed");
                    return 0;
                }
                case "missing-native":
                    try
                    {
                        Console.WriteLine("version " + Logger.LibraryVersion);
                        return 3;
                    }
                    catch (DllNotFoundException e)
                    {
                        Console.WriteLine("MISSING " + e.Message);
                        return 0;
                    }
                default:
                    Console.Error.WriteLine("unknown child mode " + mode);
                    return 2;
            }
        }

        private static ChildRun RunChildOf(string exe, string mode, params string[] env)
        {
            var psi = new ProcessStartInfo("mono", "\"" + exe + "\" --child " + mode + " " + ChildArgs)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            psi.EnvironmentVariables.Remove("KEEPER_JOB_ID");
            psi.EnvironmentVariables.Remove("KEPMLOG_FALLBACK");
            foreach (string kv in env)
            {
                int eq = kv.IndexOf('=');
                psi.EnvironmentVariables[kv.Substring(0, eq)] = kv.Substring(eq + 1);
            }
            ChildArgs = "";
            using (var p = Process.Start(psi))
            {
                var stdout = p.StandardOutput.ReadToEndAsync();
                var stderr = p.StandardError.ReadToEndAsync();
                p.WaitForExit();
                var r = new ChildRun { Stdout = stdout.Result, Stderr = stderr.Result, Code = p.ExitCode };
                foreach (string line in r.Stdout.Split('\n'))
                {
                    if (!line.StartsWith("RESULT ", StringComparison.Ordinal)) continue;
                    foreach (string kv in line.Substring(7).Trim().Split(' '))
                    {
                        int eq = kv.IndexOf('=');
                        r.Result[kv.Substring(0, eq)] = kv.Substring(eq + 1);
                    }
                }
                return r;
            }
        }

        // Extra arguments of the next child (the agent's --keeper-api-base).
        private static string ChildArgs = "";

        private static ChildRun RunChild(string mode, params string[] env)
        {
            return RunChildOf(typeof(Program).Assembly.Location, mode, env);
        }

        private static readonly Regex UtcStamp = new Regex(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ");

        private static List<string> RecordLines(string stderr)
        {
            var lines = new List<string>();
            foreach (string l in stderr.Split('\n'))
            {
                if (l == "" || l.StartsWith("kepmlog:", StringComparison.Ordinal)) continue;
                Check(UtcStamp.IsMatch(l), "not a record line: " + l);
                lines.Add(UtcStamp.Replace(l, ""));
            }
            return lines;
        }

        private static void StderrFallback()
        {
            var r = RunChild("fallback", "KEPMLOG_FALLBACK=stderr");
            Check(r.Code == 0, "exit " + r.Code + ": " + r.Stdout + r.Stderr);
            int warnings = Regex.Matches(r.Stderr, Regex.Escape("kepmlog: no job id (KEEPER_JOB_ID is not set)")).Count;
            Check(warnings == 1, warnings + " warnings:\n" + r.Stderr);
            var want = Enumerable.Range(0, 10).Select(i => "Warning  DotnetTool [Finding] record " + i).ToList();
            want.Add("EVENT    DotnetTool {\"phase\":\"done\"}");
            var got = RecordLines(r.Stderr);
            Check(got.SequenceEqual(want), "got\n" + string.Join("\n", got.ToArray()));
            Check(r.Result["printed"] == "11" && r.Result["accepted"] == "0" && r.Result["toStderr"] == "True", "stats " + r.Stdout);
            var bad = RunChild("fallback", "KEPMLOG_FALLBACK=console");
            Check(bad.Code == 1 && bad.Stdout.Contains("KEPMLOG_FALLBACK=\"console\" is not one of \"error\", \"stderr\""),
                "exit " + bad.Code + ": " + bad.Stdout);
        }

        private static void FailedConstructor()
        {
            var r = RunChild("fail");
            Check(r.Code == 0, "exit " + r.Code + ": " + r.Stdout + r.Stderr);
            Check(r.Stderr.Trim() != "" && r.Stderr.Count(c => c == '\n') == 1, "want exactly the one error line, got:\n" + r.Stderr);
            Check(r.Stderr.Contains("mqttTopics"), r.Stderr);
        }

        private static string ClosedPort()
        {
            var ln = new TcpListener(IPAddress.Loopback, 0);
            ln.Start();
            int port = ((IPEndPoint)ln.LocalEndpoint).Port;
            ln.Stop();
            return port.ToString();
        }

        private static void StderrUndelivered()
        {
            string port = ClosedPort();
            var r = RunChild("down", "BROKER_PORT=" + port, "TIMEOUT_MS=300");
            Check(r.Code == 0, "exit " + r.Code + ": " + r.Stderr);
            var want = Enumerable.Range(0, 20).Select(i => "Info     DownTool [Undelivered] u " + i);
            var got = RecordLines(r.Stderr);
            Check(got.SequenceEqual(want), "got\n" + string.Join("\n", got.ToArray()));
            Check(r.Result["left"] == "20" && r.Result["printed"] == "20", "result " + r.Stdout);
            var off = RunChild("off", "BROKER_PORT=" + port, "TIMEOUT_MS=300");
            Check(off.Code == 0 && off.Stderr == "" && off.Result["printed"] == "0", "exit " + off.Code + ", " + off.Stdout + ", stderr:\n" + off.Stderr);
        }

        private static void StderrNothingWhenDelivered()
        {
            using (var d = new DevAgent(new[] { "KeeperLogger" }))
            {
                var r = RunChild("up", "BROKER_PORT=" + d.BrokerPort, "BROKER_CA=" + d.Ca, "TIMEOUT_MS=20000");
                Check(r.Code == 0 && r.Stderr == "", "exit " + r.Code + ": " + r.Stderr);
                Check(r.Result["left"] == "0" && r.Result["printed"] == "0", "result " + r.Stdout);
                Check(d.Messages("KeeperLogger", 20).Count == 20, "the broker got fewer than 20");
            }
        }

        // A tool that ends without Dispose (returning from Main, Environment.Exit, an unhandled
        // exception): what it logged still arrives, through the native library's exit hook
        // (atexit) or the SafeHandle's finalizer, whichever the runtime runs first.
        private static void ExitWithoutDispose(string mode, int wantCode)
        {
            const int records = 200;
            using (var d = new DevAgent(new[] { "KeeperLogger" }))
            {
                ChildArgs = "--keeper-api-base=" + d.ApiBase;
                var r = RunChild(mode, "KEEPER_JOB_ID=" + JobId, "RECORDS=" + records, "BROKER_CA=" + d.Ca);
                Check(wantCode >= 0 ? r.Code == wantCode : r.Code != 0, "exit " + r.Code + ", want " + wantCode + ": " + r.Stderr);
                // Logged right after the logger was created, while its worker still discovers
                // the broker: none can be delivered before the process starts to end.
                Check(r.Result.ContainsKey("delivered_before_exit") && r.Result["delivered_before_exit"] != records.ToString(),
                    "the child delivered everything before it ended; the test proves nothing: " + r.Stdout);
                var got = d.Messages("KeeperLogger", records).Where(m => (string)m.MetaData["Category"] == "Exit").ToList();
                Check(got.Count == records, "the broker received " + got.Count + " of " + records + "; child stderr:\n" + r.Stderr);
                Check(got.Select(m => (string)m.MetaData["Message"]).SequenceEqual(Enumerable.Range(0, records).Select(i => "record " + i)),
                    "records out of order");
            }
        }

        private static void MissingNative()
        {
            // Only the managed assemblies, without libkepmlog.so beside them or on the path.
            string dir = TempDir();
            string here = Path.GetDirectoryName(typeof(Program).Assembly.Location);
            foreach (string f in new[] { "KepmlogTests.exe", "Kepmlog.dll" })
            {
                File.Copy(Path.Combine(here, f), Path.Combine(dir, f));
            }
            var r = RunChildOf(Path.Combine(dir, "KepmlogTests.exe"), "missing-native", "LD_LIBRARY_PATH=", "MONO_PATH=");
            Check(r.Code == 0, "exit " + r.Code + ": " + r.Stdout + r.Stderr);
            Check(r.Stdout.Contains("libkepmlog.so for Linux x64 (runtime linux-x64) was not found")
                && r.Stdout.Contains("runtimes/linux-x64/native/"), r.Stdout);
        }
    }
}
