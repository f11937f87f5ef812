// `afcluster bench`: compare the drivers on the same work against the raw UDP limit of this
// machine, on real daemons and real client processes (tools/bench/, docs/BENCH.md).
import { writeFileSync } from 'node:fs';
import type { Command } from './command.ts';
import { COROSYNC_CIPHER, COROSYNC_HASH } from './bench/corosync-conf.ts';
import { parseBenchArgs, DEFAULT_SIZES } from './bench/options.ts';
import { Progress } from './bench/progress.ts';
import { formatReport, scalingChart, simScalingChart, throughputChart } from './bench/report.ts';
import { runBench, stepCount, ACCELERATED_WINDOW_ON } from './bench/run.ts';

/** FILE.svg -> FILE-SUFFIX.svg */
export function siblingSvgPath(svg: string, suffix: string): string {
  return svg.endsWith('.svg') ? `${svg.slice(0, -4)}-${suffix}.svg` : `${svg}-${suffix}.svg`;
}

export const command: Command = {
  name: 'bench',
  summary: 'measure the drivers on real daemons against the raw UDP ceiling (evsbench tables)',
  help: `usage: afcluster bench [--drivers totem,cman] [--nodes N] [--sizes 100,200,...] [--seconds S]
                       [--crypto on|off|on,off] [--accelerated on|off|on,off] [--latency] [--scaling]
                       [--latency-warmup S] [--latency-paced MS] [--rounds N]
                       [--json FILE] [--svg FILE] [--set section.key=value] [--profile DIR] [--mtu N]
                       [--reference corosync] [--reference-mtu N] [--loss P[,P...]] [--client ts|c]

Starts N real daemons (afcluster daemon, one process per node on 127.0.0.1..N, real UDP) for
each driver and setting, and one client process per node over the bridge protocol. Every
client sends as fast as its daemon accepts and counts what its node delivers. Per size it
prints evsbench's table: writes, bytes per write, seconds, TP/s (messages delivered per second
at every node), MB/s, the ratio to the raw UDP ceiling, and the driver's counters
(retransmissions, token rotations per second, messages per datagram). The ceiling is measured
first, in the same run: N processes on the same addresses fan-out sending the same bytes over
raw UDP with no protocol, packed into ${1472}-byte datagrams, counting what arrives.
A progress bar runs on stderr. Figures are measurements, never pass/fail.

options:
  --drivers LIST       drivers to compare (default totem,cman)
  --nodes N            daemons, 2..32 (default 3)
  --sizes LIST         message sizes in bytes (default ${DEFAULT_SIZES.join(',')})
  --seconds S          measurement window per size (default 3; a 0.3 s warm-up precedes it, and
                       after each start every node sends the first size for 2 s, not measured,
                       then with --reference node 1 alone for 3 s; both at most S when S < 2)
  --crypto on|off      encrypt and authenticate datagrams (on,off runs both; default off)
  --accelerated on|off totem's Accelerated Ring (accelerated_window ${ACCELERATED_WINDOW_ON} when on; default off)
  --latency            also time round trips to agreed self-delivery, idle and under 50% load
                       (with --reference, half the lower of the two maxima, the same for both)
  --latency-warmup S   seconds of round trips before a latency row's samples count (default 3,
                       the same for the reference): after a start or a load a daemon's idle
                       path runs slower for up to two seconds while V8 optimises it; 0.3
                       measures that
  --latency-paced MS   also an idle row per size whose round trips start every MS ms (1..1000;
                       the same for the reference), the cluster idle between them: back-to-back
                       round trips keep the cores busy, and a faster system then loads the
                       machine more
  --rounds N           each row of the size table (throughput and latency) in N windows (1..20,
                       default 1), each with its warm-up, taken in turns with the reference's: a
                       row's rates are over all its windows, its percentiles of all their samples.
                       On a machine whose speed drifts one window is one sample: on the project's
                       machine the same build's one-window figures moved by a third and more
                       from run to run
  --scaling            also measure by node count (--scale-nodes, default 2..8) at --scale-size
                       (default 1300) on real daemons, and in the simulator over a 1 Gbit LAN
  --no-ceiling         skip the raw UDP ceiling
  --json FILE          write every figure as JSON
  --svg FILE           chart of throughput by size (with --scaling also FILE-scaling.svg and
                       FILE-sim.svg: by node count on real daemons and in the simulator)
  --set S.K=V          driver config key for every run, e.g. --set totem.window_size=100
  --profile DIR        write a .cpuprofile of every daemon into DIR (node --cpu-prof)
  --keep               keep the daemons' configs and logs (their directory is printed)
  --reference corosync also measure corosync on the same work in the same run, interleaved: each
                       afcluster row is followed by corosync's, with the ratio (x corosync) in
                       the throughput, latency and memory tables. Adds the one-sender workload
                       (node 1's client alone sends; the others count) and idle latency for both.
                       corosync runs as N nodes, each in its own network namespace on a bridge
                       whose links have the daemons' MTU (--mtu, or loopback's 65535; --reference-mtu
                       sets another), knet,
                       crypto ${COROSYNC_CIPHER}+${COROSYNC_HASH} with a generated authkey when --crypto on;
                       its client (tools/bench/workers/cpg-bench.c) is compiled with cc -lcpg.
                       Needs root, corosync and libcpg-dev (Debian: apt install corosync
                       libcpg-dev); without them the corosync rows print as skipped and say why.
                       On a virtual or shared machine give --rounds 3 or more: one window per row
                       gives a ratio that can move by a third and more from run to run

  --client ts|c        the library afcluster's clients use (default ts): ts is the TypeScript
                       library (ClusterSocket); c the C library (clients/c, built by npm install),
                       in a client compiled here with cc (tools/bench/workers/afc-bench-worker.c),
                       as corosync's client is C; both keep 512 sends in flight
  --mtu N              cluster.mtu of every daemon (default "auto": loopback's, 65535, so totem's
                       frames are 64 KiB; 1500 measures the frames of an Ethernet LAN); the
                       ceiling's datagrams follow it
  --loss P[,P...]      instead of the size table: one sender (node 1) per size and loss rate P
                       (percent), every cluster datagram dropped at its receiver with probability
                       P/100 by an iptables rule on loopback INPUT (statistic --mode random) for
                       the cluster's UDP port only; the rule is removed after each rate, on errors
                       and on Ctrl-C. Needs root and iptables. A row per rate: throughput, its
                       share of the 0% row, retransmissions, token re-sends, configurations.
                       With --scaling, the simulator's rows are repeated at each rate (its
                       datagram copies dropped at random). One sender by loss rate in the
                       simulator alone: afcluster sim --loss-curve
`,
  async run(argv) {
    const opts = parseBenchArgs(argv);
    const progress = new Progress(stepCount(opts));
    const report = await runBench({ opts, progress, command: `afcluster bench ${argv.join(' ')}`.trim() });
    progress.finish();
    process.stdout.write(formatReport(report));
    if (opts.json) writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n');
    if (opts.svg) {
      writeFileSync(opts.svg, throughputChart(report));
      if (opts.scaling) {
        writeFileSync(siblingSvgPath(opts.svg, 'scaling'), scalingChart(report));
        writeFileSync(siblingSvgPath(opts.svg, 'sim'), simScalingChart(report));
      }
    }
    return 0;
  },
};
